package org.edgekit.host

import java.nio.file.Files
import java.nio.file.Paths
import kotlin.system.exitProcess
import org.edgekit.core.BundleError
import org.json.JSONArray
import org.json.JSONObject

/**
 * `RunPte PTE WINDOWS.json [SHAPE]`: runs each window of a JSON array of flattened windows through
 * [ExecuTorchRunner] and prints one JSON object: {"logits": [[...], ...], "ms_per_window": ...}.
 * SHAPE is the model's input shape, e.g. 1,1,1200 (default: 1,1,<window length>, the rr-series
 * contract's); ms_per_window is the best of TIMED_PASSES passes over the windows, after a warm-up pass. A check of
 * the host runner against the Python runtime (tests/phone); exit 2, with one line why, on an error.
 */
const val TIMED_PASSES = 5

fun main(args: Array<String>) {
    if (args.size !in 2..3) {
        System.err.println("usage: RunPte PTE WINDOWS.json [SHAPE, e.g. 1,1,1200]")
        exitProcess(2)
    }
    try {
        val windows = JSONArray(String(Files.readAllBytes(Paths.get(args[1])), Charsets.UTF_8)).let { array ->
            List(array.length()) { i ->
                val window = array.getJSONArray(i)
                FloatArray(window.length()) { window.getDouble(it).toFloat() }
            }
        }
        require(windows.isNotEmpty()) { "${args[1]} holds no windows" }
        val shape = args.getOrNull(2)?.split(',')?.map { it.trim().toLong() }?.toLongArray()
            ?: longArrayOf(1, 1, windows[0].size.toLong())
        ExecuTorchRunner(Paths.get(args[0]), shape).use { runner ->
            // An untimed pass warms the JIT and the delegate; then the best of TIMED_PASSES, as timeit
            // does, since on a shared machine the noise only ever adds time. The last pass is printed.
            windows.forEach { runner.logits(it) }
            var logits = emptyList<FloatArray>()
            var best = Long.MAX_VALUE
            repeat(TIMED_PASSES) {
                val start = System.nanoTime()
                logits = windows.map { runner.logits(it) }
                best = minOf(best, System.nanoTime() - start)
            }
            val msPerWindow = best / 1e6 / windows.size
            val out = JSONArray()
            logits.forEach { row -> out.put(JSONArray().apply { row.forEach { put(it.toDouble()) } }) }
            println(JSONObject().put("logits", out).put("ms_per_window", msPerWindow))
        }
    } catch (error: Exception) {
        // BundleError, a bad window or a runtime failure: one line saying what, never a stack dump.
        val kind = if (error is BundleError) "bundle refused" else error.javaClass.simpleName
        System.err.println("RunPte: $kind: ${error.message}")
        exitProcess(2)
    }
}
