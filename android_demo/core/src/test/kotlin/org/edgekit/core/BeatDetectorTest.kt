package org.edgekit.core

import org.edgekit.core.EcgJson.counts
import org.edgekit.core.EcgJson.longs
import org.edgekit.core.EcgJson.strings
import org.json.JSONArray
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory
import kotlin.math.abs
import kotlin.math.max

/**
 * ecg-to-beats/1 against `teacher.detect_beats` / `teacher.ecg_beats` on three real excerpts (golden files
 * of android_demo/tools/golden_ecg.py): the same sample indices whole and streamed in chunks of any size.
 */
class BeatDetectorTest {
    private val specs = Golden.json("ecg_specs.json")

    /** An excerpt as the kit reads it: int16 samples / gain in double, then float32 mV. */
    private class Excerpt(val name: String, val fs: Double, val signal: FloatArray, val golden: JSONObject)

    private val excerpts = listOf("a01", "mitdb108", "mitdb114").map { name ->
        val golden = Golden.json("beats_$name.json")
        val gain = golden.getDouble("gain")
        val adu = Golden.ints(golden.getJSONArray("adu"))
        Excerpt(name, golden.getDouble("fs"), FloatArray(adu.size) { (adu[it] / gain).toFloat() }, golden)
    }

    private fun expected(excerpt: Excerpt) = longs(excerpt.golden.getJSONArray("detect_beats"))

    private fun FloatArray.toDoubles() = DoubleArray(size) { this[it].toDouble() }

    @Test
    fun `the spec is the server's, and reads back from its own JSON`() {
        val spec = BeatDetectorSpec.fromJson(specs.getJSONObject("ecg_to_beats"))
        assertEquals(spec, BeatDetectorSpec.fromJson(spec.toJson()))
    }

    @Test
    fun `another detector, a missing or an unknown constant is refused`() {
        fun edited(edit: JSONObject.() -> Unit) = JSONObject(specs.getJSONObject("ecg_to_beats").toString()).apply(edit)
        val other = assertThrows(BundleError::class.java) { BeatDetectorSpec.fromJson(edited { put("name", "ecg-to-beats/2") }) }
        assertTrue(other.message!!.contains("not implemented"), other.message)
        val missing = assertThrows(BundleError::class.java) { BeatDetectorSpec.fromJson(edited { remove("refractory_s") }) }
        assertTrue(missing.message!!.contains("refractory_s"), missing.message)
        val unknown = assertThrows(BundleError::class.java) { BeatDetectorSpec.fromJson(edited { put("qrs_width_s", 0.1) }) }
        assertTrue(unknown.message!!.contains("qrs_width_s"), unknown.message)
    }

    @TestFactory
    fun `the band-pass sections are scipy's at every rate, order and band`(): List<DynamicTest> {
        val cases = Golden.json("butterworth_sos.json").getJSONArray("cases")
        return (0 until cases.length()).map { cases.getJSONObject(it) }.map { case ->
            val band = case.getJSONArray("band_hz")
            DynamicTest.dynamicTest("order ${case.getInt("order")}, $band Hz at ${case.getDouble("fs")} Hz") {
                val sos = butterBandpassSos(case.getInt("order"), band.getDouble(0), band.getDouble(1), case.getDouble("fs"))
                val expected = case.getJSONArray("sos")
                assertEquals(expected.length(), sos.size, "sections")
                for (s in sos.indices) {
                    val row = Golden.doubles(expected.getJSONArray(s))
                    for (c in row.indices) {
                        assertTrue(abs(sos[s][c] - row[c]) <= 1e-12 * max(1.0, abs(row[c])),
                            "section $s coefficient $c: ${sos[s][c]} vs scipy's ${row[c]}")
                    }
                }
            }
        }
    }

    @TestFactory
    fun `the whole signal gives the server's beats`(): List<DynamicTest> = excerpts.map { excerpt ->
        DynamicTest.dynamicTest(excerpt.name) {
            assertArrayEquals(expected(excerpt), detectBeats(excerpt.signal.toDoubles(), excerpt.fs, Golden.detector))
        }
    }

    @TestFactory
    fun `streamed in chunks of any size it gives the same beats`(): List<DynamicTest> = excerpts.flatMap { excerpt ->
        listOf(1, 37, 1000, (10 * excerpt.fs).toInt()).distinct().map { size ->
            DynamicTest.dynamicTest("${excerpt.name}, $size samples a chunk") {
                val detector = StreamingBeatDetector(excerpt.fs, Golden.detector)
                val beats = mutableListOf<Long>()
                for (from in excerpt.signal.indices step size) {
                    beats += detector.feed(excerpt.signal.copyOfRange(from, minOf(from + size, excerpt.signal.size))).toList()
                }
                beats += detector.finish().toList()
                assertArrayEquals(expected(excerpt), beats.toLongArray())
            }
        }
    }

    @TestFactory
    fun `the ECG path gives the server's beats, marks and drops`(): List<DynamicTest> = excerpts.map { excerpt ->
        DynamicTest.dynamicTest(excerpt.name) {
            val golden = excerpt.golden.getJSONObject("ecg_beats")
            val result = ecgBeats(excerpt.signal, excerpt.fs, Golden.detector, Golden.quality)
            assertArrayEquals(longs(golden.getJSONArray("beats")), result.beats)
            assertEquals(strings(golden.getJSONArray("reasons")), result.quality.reasons)
            assertEquals(counts(golden.getJSONObject("rejected")), result.rejected)
        }
    }

    @Test
    fun `a rate outside 100-1000 Hz and NaN samples are refused`() {
        assertTrue(assertThrows(NightError::class.java) { StreamingBeatDetector(50.0, Golden.detector) }.message!!.contains("50"))
        assertThrows(NightError::class.java) { StreamingBeatDetector(1200.0, Golden.detector) }
        val detector = StreamingBeatDetector(100.0, Golden.detector)
        assertThrows(NightError::class.java) { detector.feed(doubleArrayOf(0.1, Double.NaN)) }
    }

    @TestFactory
    fun `a signal shorter than the learning period gives the server's beats`(): List<DynamicTest> = excerpts.map { excerpt ->
        DynamicTest.dynamicTest(excerpt.name) {
            val prefix = excerpt.golden.getJSONObject("prefix")
            val signal = excerpt.signal.copyOf(prefix.getInt("samples")).toDoubles()
            assertArrayEquals(longs(prefix.getJSONArray("detect_beats")), detectBeats(signal, excerpt.fs, Golden.detector))
        }
    }
}

/** Reading the ECG golden files' arrays (beat samples, block marks, counts per reason). */
object EcgJson {
    fun longs(array: JSONArray): LongArray = LongArray(array.length()) { array.getLong(it) }
    fun strings(array: JSONArray): List<String> = List(array.length()) { array.getString(it) }
    fun counts(o: JSONObject): Map<String, Int> = o.keys().asSequence().associateWith { o.getInt(it) }
}
