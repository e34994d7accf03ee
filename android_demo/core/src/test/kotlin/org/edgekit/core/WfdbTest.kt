package org.edgekit.core

import org.edgekit.core.EcgJson.longs
import org.edgekit.core.EcgJson.strings
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory
import org.junit.jupiter.api.io.TempDir
import java.io.File

/**
 * The WFDB reader against `wfdb.rdrecord` / `wfdb.rdann` on the first seconds of real records (MIT-BIH 100,
 * format 212 with two signals; Apnea-ECG a01, format 16) and two real annotation files (golden_ecg.py).
 */
class WfdbTest {
    private val golden = Golden.json("wfdb/wfdb.json")

    @TestFactory
    fun `channel 0 reads as wfdb's physical mV, to the float32 bit`(): List<DynamicTest> {
        val records = golden.getJSONObject("records")
        return records.keys().asSequence().toList().map { name ->
            DynamicTest.dynamicTest(name) {
                val expected = records.getJSONObject(name)
                val ecg = Wfdb.readEcg(Golden.file("wfdb/$name.hea"))
                assertEquals(expected.getDouble("fs"), ecg.fs)
                assertEquals(expected.getString("units"), ecg.units)
                val samples = Golden.doubles(expected.getJSONArray("samples"))
                assertEquals(samples.size, ecg.samples.size)
                for (i in samples.indices) assertEquals(samples[i].toFloat(), ecg.samples[i], "sample $i")
                // The record's path without its extension reads the same.
                assertArrayEquals(ecg.samples, Wfdb.readEcg(File(Golden.file("wfdb/$name.hea").path.removeSuffix(".hea"))).samples)
            }
        }
    }

    @TestFactory
    fun `annotation files read as wfdb's samples, symbols and notes`(): List<DynamicTest> {
        val annotations = golden.getJSONObject("annotations")
        return annotations.keys().asSequence().toList().map { name ->
            DynamicTest.dynamicTest(name) {
                val expected = annotations.getJSONObject(name)
                val read = Wfdb.readAnnotations(Golden.file("wfdb/$name"))
                assertArrayEquals(longs(expected.getJSONArray("samples")), read.samples)
                assertEquals(strings(expected.getJSONArray("symbols")), read.symbols)
                assertEquals(strings(expected.getJSONArray("aux_notes")), read.auxNotes)
            }
        }
    }

    @Test
    fun `codes map to WFDB's mnemonics`() {
        assertEquals(listOf("N", "V", "A", "|", "~", "+", "/", "[15]"), listOf(1, 5, 8, 16, 14, 28, 12, 15).map { Wfdb.symbol(it) })
    }

    @Test
    fun `a missing, truncated or unreadable file is refused, naming it`(@TempDir dir: File) {
        val missing = assertThrows(NightError::class.java) { Wfdb.readEcg(File(dir, "nothing")) }
        assertTrue(missing.message!!.contains("nothing.hea"), missing.message)

        Golden.file("wfdb/a01s.hea").copyTo(File(dir, "a01s.hea"))
        val bytes = Golden.file("wfdb/a01s.dat").readBytes()
        File(dir, "a01s.dat").writeBytes(bytes.copyOf(bytes.size - 10))
        val truncated = assertThrows(NightError::class.java) { Wfdb.readEcg(File(dir, "a01s")) }
        assertTrue(truncated.message!!.contains("a01s.dat") && truncated.message!!.contains("truncated"), truncated.message)

        File(dir, "f80.hea").writeText("f80 1 100 10\nf80.dat 80 200 8 0 0 0 0 ECG\n")
        File(dir, "f80.dat").writeBytes(ByteArray(10))
        val format = assertThrows(NightError::class.java) { Wfdb.readEcg(File(dir, "f80")) }
        assertTrue(format.message!!.contains("format 80") && format.message!!.contains("f80.dat"), format.message)

        File(dir, "uv.hea").writeText("uv 1 100 5\nuv.dat 16 200/uV 16 0 0 0 0 ECG\n")
        File(dir, "uv.dat").writeBytes(ByteArray(10))
        assertTrue(assertThrows(NightError::class.java) { Wfdb.readEcg(File(dir, "uv")) }.message!!.contains("uV"))

        File(dir, "rate.hea").writeText("rate 1 0 5\nrate.dat 16 200 16 0 0 0 0 ECG\n")
        assertTrue(assertThrows(NightError::class.java) { Wfdb.readEcg(File(dir, "rate")) }.message!!.contains("rate.hea"))

        val apn = Golden.file("wfdb/a01.apn").readBytes()
        File(dir, "cut.apn").writeBytes(apn.copyOf(4)) // the first annotation's SKIP, without its interval
        val cut = assertThrows(NightError::class.java) { Wfdb.readAnnotations(File(dir, "cut.apn")) }
        assertTrue(cut.message!!.contains("cut.apn") && cut.message!!.contains("truncated"), cut.message)
        assertTrue(assertThrows(NightError::class.java) { Wfdb.readAnnotations(File(dir, "none.atr")) }.message!!.contains("none.atr"))
    }
}
