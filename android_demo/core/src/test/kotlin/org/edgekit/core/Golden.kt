package org.edgekit.core

import org.json.JSONArray
import org.json.JSONObject
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.util.Base64

/** The golden files the server exported (android_demo/tools/make_golden.py, golden_ecg.py), on the test classpath. */
object Golden {
    fun json(name: String): JSONObject {
        val stream = javaClass.getResourceAsStream("/golden/$name") ?: error("golden file $name missing: run android_demo/tools/make_golden.py")
        return JSONObject(stream.bufferedReader().readText())
    }

    /** The server's detector and signal-quality specs (`teacher.BEAT_DETECTOR`, `teacher.SIGNAL_QUALITY`). */
    val detector: BeatDetectorSpec by lazy { BeatDetectorSpec.fromJson(json("ecg_specs.json").getJSONObject("ecg_to_beats")) }
    val quality: SignalQualitySpec by lazy { SignalQualitySpec.fromJson(json("ecg_specs.json").getJSONObject("signal_quality")) }

    fun file(name: String): File = File(javaClass.getResource("/golden/$name")?.toURI() ?: error("golden file $name missing"))

    fun floats(base64: String): FloatArray {
        val buffer = ByteBuffer.wrap(Base64.getDecoder().decode(base64)).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
        return FloatArray(buffer.remaining()).also { buffer.get(it) }
    }

    fun doubles(array: JSONArray): DoubleArray = DoubleArray(array.length()) { array.getDouble(it) }
    fun ints(array: JSONArray): IntArray = IntArray(array.length()) { array.getInt(it) }
    fun booleans(array: JSONArray): BooleanArray = BooleanArray(array.length()) { array.getInt(it) == 1 }
}

/** JUnit's assertThrows with the type as a parameter (the console jar has no Kotlin extensions). */
inline fun <reified T : Throwable> assertThrows(noinline block: () -> Unit): T =
    org.junit.jupiter.api.Assertions.assertThrows(T::class.java) { block() }
