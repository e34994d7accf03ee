package org.edgekit.host

import org.edgekit.core.Bundle
import org.edgekit.core.BundleError
import org.edgekit.core.Night
import org.edgekit.core.NightError
import org.edgekit.core.Replay
import java.io.File
import kotlin.system.exitProcess

/**
 * `android_demo/host/replay BUNDLE --public-key PUB (--record x01[,x02...] [--data-dir D] | --rr FILE | --ecg FILE
 * [--fs FS]) [--json] [--probabilities PATH]`: nights through the Kotlin core and the bundle's real .pte
 * (ExecuTorch's C++ runtime), printing what `edgekit replay` prints (one JSON line a night); `--probabilities`
 * writes each minute's unrounded apnea probability, one a line (several records: PATH/<record>.txt), for
 * comparisons finer than the JSON's 5 decimals. Several records share one process and one loaded model.
 */
object ReplayMain {
    private const val USAGE = "usage: replay BUNDLE --public-key PUB (--record NAME[,NAME...] [--data-dir D] | --rr FILE | " +
        "--ecg FILE [--fs FS]) [--json] [--probabilities FILE]"

    @JvmStatic
    fun main(args: Array<String>) {
        val options = try {
            parse(args)
        } catch (error: IllegalArgumentException) {
            System.err.println("replay: ${error.message}\n$USAGE")
            exitProcess(2)
        }
        try {
            val key = Bundle.publicKey(File(options.getValue("--public-key")).readText())
            val bundle = Bundle.load(File(options.getValue("bundle")), key)
            val nights: List<() -> Night> = when {
                "--ecg" in options -> listOf { Night.fromEcg(File(options.getValue("--ecg")), options["--fs"]?.toDouble(), bundle.preprocessing) }
                "--fs" in options -> throw IllegalArgumentException("--fs gives the sampling rate of an --ecg CSV file")
                "--rr" in options -> listOf { Night.fromRrFile(File(options.getValue("--rr"))) }
                else -> options.getValue("--record").split(",").map { name ->
                    { Night.fromRecord(name, recordFolder(name, options["--data-dir"]), bundle.preprocessing) }
                }
            }
            if (nights.size > 1 && "--json" !in options) throw IllegalArgumentException("several records print JSON lines: add --json")
            ExecuTorchRunner(bundle.pteBytes, bundle.inputShape, bundle.pte.path).use { runner ->
                for (read in nights) {
                    val night = read()
                    val replay = Replay.of(bundle, night, runner)
                    options["--probabilities"]?.let { path ->
                        val file = if (nights.size > 1) File(path, "${night.name}.txt").also { it.parentFile.mkdirs() } else File(path)
                        file.writeText(replay.probabilities.joinToString("\n", postfix = "\n"))
                    }
                    if ("--json" in options) {
                        println(replay.toJson())
                    } else {
                        val flagged = replay.decision.flags.count { it }
                        println("${night.name}: $flagged of ${replay.probabilities.size} minutes flagged, estimated AHI " +
                            "%.1f -> ${if (replay.decision.apneic) "apneic" else "not apneic"} (${replay.severity}); runtime %.2f s"
                                .format(replay.decision.estimatedAhi, replay.runtimeSeconds))
                    }
                }
            }
        } catch (error: Exception) {
            if (error !is BundleError && error !is NightError && error !is IllegalArgumentException && error !is java.io.IOException) throw error
            System.err.println("replay: error: ${error.message}")
            exitProcess(2)
        }
    }

    private fun parse(args: Array<String>): Map<String, String> {
        val options = LinkedHashMap<String, String>()
        val valued = setOf("--public-key", "--record", "--data-dir", "--rr", "--ecg", "--fs", "--probabilities")
        var i = 0
        while (i < args.size) {
            val arg = args[i]
            when {
                arg == "--json" -> options[arg] = ""
                arg in valued -> options[arg] = args.getOrNull(++i) ?: throw IllegalArgumentException("$arg needs a value")
                arg.startsWith("--") -> throw IllegalArgumentException("unknown option $arg")
                "bundle" !in options -> options["bundle"] = arg
                else -> throw IllegalArgumentException("one bundle only, got $arg too")
            }
            i++
        }
        if ("bundle" !in options) throw IllegalArgumentException("which bundle?")
        if ("--public-key" !in options) throw IllegalArgumentException("--public-key: the core runs only bundles the hospital signed")
        val nights = listOf("--record", "--rr", "--ecg").count { it in options }
        if (nights != 1) throw IllegalArgumentException("give one night: --record, --rr or --ecg")
        return options
    }

    /**
     * The folder holding a record, as the kit's CLI finds it (`teacher._record_folder`): the data
     * directory itself when it holds the record, else its apnea-ecg/ or apnea-ecg-annotations/ folder.
     */
    private fun recordFolder(name: String, dataDir: String?): File {
        val root = File(dataDir ?: System.getenv("EDGEKIT_DATA")?.takeIf { it.isNotEmpty() } ?: "data")
        if (dataDir != null && File(root, "$name.hea").exists()) return root
        for (candidate in listOf(File(root, "apnea-ecg"), File(root, "apnea-ecg-annotations"), root)) {
            if (File(candidate, "a01.hea").exists() || File(candidate, "RECORDS").exists()) return candidate
        }
        throw NightError("no Apnea-ECG records under $root: expected $root/apnea-ecg/<record>.hea with .qrs and .apn")
    }
}
