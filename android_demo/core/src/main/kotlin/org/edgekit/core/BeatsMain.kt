package org.edgekit.core

import org.json.JSONArray
import org.json.JSONObject
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.security.MessageDigest
import kotlin.system.exitProcess

/**
 * The phone core's ECG path from the command line, for measuring it against the server's:
 * `java -cp core.jar:kotlin-stdlib.jar:json.jar org.edgekit.core.BeatsMain MANIFEST [--warmup] RECORD...` reads each
 * WFDB record (channel 0, [Wfdb.readEcg]), runs [ecgBeats] on it with the detector and signal-quality specs
 * of a bundle's manifest (MANIFEST, its `bundle.preprocessing`) and prints one JSON line per record:
 * the beats, the beats dropped per reason, the seconds [ecgBeats] took, and the SHA-256 of the samples as
 * little-endian float32 (to check the reading against wfdb's). `--warmup` runs the first record once
 * untimed first, so the times are those of compiled code, as on a phone.
 */
object BeatsMain {
    @JvmStatic
    fun main(args: Array<String>) {
        val warmup = "--warmup" in args
        val paths = args.filter { it != "--warmup" }
        if (paths.size < 2) {
            System.err.println("usage: BeatsMain MANIFEST [--warmup] RECORD...  (a bundle's manifest.json; WFDB record paths)")
            exitProcess(2)
        }
        val records = paths.drop(1)
        try {
            val manifest = JSONObject(File(paths[0]).readText())
            val preprocessing = RrPreprocessing.fromJson(manifest.getJSONObject("bundle").getJSONObject("preprocessing"))
            if (warmup) Wfdb.readEcg(File(records[0])).let { ecgBeats(it.samples, it.fs, preprocessing.detector, preprocessing.quality) }
            for (record in records) println(measure(File(record), preprocessing))
        } catch (error: Exception) {
            if (error !is NightError && error !is BundleError) throw error
            System.err.println(error.message)
            exitProcess(1)
        }
    }

    private fun measure(record: File, preprocessing: RrPreprocessing): JSONObject {
        val ecg = Wfdb.readEcg(record)
        val started = System.nanoTime()
        val result = try {
            ecgBeats(ecg.samples, ecg.fs, preprocessing.detector, preprocessing.quality)
        } catch (error: NightError) {
            throw NightError("$record: ${error.message}")
        }
        val seconds = (System.nanoTime() - started) / 1e9
        val bytes = ByteBuffer.allocate(4 * ecg.samples.size).order(ByteOrder.LITTLE_ENDIAN)
        ecg.samples.forEach { bytes.putFloat(it) }
        val sha256 = MessageDigest.getInstance("SHA-256").digest(bytes.array()).joinToString("") { "%02x".format(it) }
        return JSONObject()
            .put("record", record.path).put("fs", ecg.fs).put("n_samples", ecg.samples.size)
            .put("signal_sha256", sha256).put("seconds", seconds)
            .put("rejected", JSONObject(result.rejected))
            .put("beats", JSONArray().apply { result.beats.forEach { put(it) } })
    }
}
