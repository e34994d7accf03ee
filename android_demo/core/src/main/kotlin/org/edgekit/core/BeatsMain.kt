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
 * `java -cp core.jar:kotlin-stdlib.jar:json.jar org.edgekit.core.BeatsMain [--warmup] RECORD...` reads each
 * WFDB record (channel 0, [Wfdb.readEcg]), runs [ecgBeats] on it and prints one JSON line per record:
 * the beats, the beats dropped per reason, the seconds [ecgBeats] took, and the SHA-256 of the samples as
 * little-endian float32 (to check the reading against wfdb's). `--warmup` runs the first record once
 * untimed first, so the times are those of compiled code, as on a phone.
 */
object BeatsMain {
    @JvmStatic
    fun main(args: Array<String>) {
        val warmup = "--warmup" in args
        val records = args.filter { it != "--warmup" }
        if (records.isEmpty()) {
            System.err.println("usage: BeatsMain [--warmup] RECORD...  (a WFDB record path, with or without .hea)")
            exitProcess(2)
        }
        try {
            if (warmup) Wfdb.readEcg(File(records[0])).let { ecgBeats(it.samples, it.fs) }
            for (record in records) println(measure(File(record)))
        } catch (error: NightError) {
            System.err.println(error.message)
            exitProcess(1)
        }
    }

    private fun measure(record: File): JSONObject {
        val ecg = Wfdb.readEcg(record)
        val started = System.nanoTime()
        val result = try {
            ecgBeats(ecg.samples, ecg.fs)
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
