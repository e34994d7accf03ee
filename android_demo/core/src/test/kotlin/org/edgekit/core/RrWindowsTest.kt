package org.edgekit.core

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory
import org.json.JSONObject

/** beats-to-rr-windows/1 against what the server's `teacher.night_windows` made of the same beats. */
class RrWindowsTest {
    private val golden = Golden.json("rr_windows.json")
    private val preprocessing = RrPreprocessing.fromJson(golden.getJSONObject("preprocessing"))

    private fun night(case: JSONObject) = Night(case.getString("name"), case.getDouble("fs"), case.getLong("samples"),
        Golden.doubles(case.getJSONArray("beat_times")), null, "golden case ${case.getString("name")}")

    @TestFactory
    fun `every case gives the server's windows, minutes with signal and report, or its refusal`(): List<DynamicTest> =
        (0 until golden.getJSONArray("cases").length()).map { index ->
            val case = golden.getJSONArray("cases").getJSONObject(index)
            DynamicTest.dynamicTest(case.getString("name")) {
                if (case.has("error")) {
                    val error = assertThrows<NightError> { preprocessing.nightWindows(night(case)) }
                    val expected = case.getString("error")
                    val reason = Regex("\\((beat times [^)]*)\\)|(too few valid beats)").find(expected)!!.value
                    assertTrue(error.message!!.contains(reason), "${error.message} should say $reason")
                    return@dynamicTest
                }
                val result = preprocessing.nightWindows(night(case))
                val values = Golden.floats(case.getString("night_f32"))
                assertEquals(case.getInt("minutes"), result.windows.size)
                var worst = 0.0
                for ((minute, window) in result.windows.withIndex()) {
                    val start = minute * preprocessing.samplesPerMinute
                    for (i in window.indices) worst = maxOf(worst, Math.abs(window[i].toDouble() - values[start + i]))
                }
                assertTrue(worst <= 1e-6, "max window difference $worst")
                assertArrayEquals(Golden.booleans(case.getJSONArray("scored")), result.scored)
                val report = case.getJSONObject("report")
                assertEquals(report.getInt("intervals"), result.report.intervals)
                assertEquals(report.getInt("out_of_range"), result.report.outOfRange)
                assertEquals(report.getInt("ectopic"), result.report.ectopic)
                assertEquals(report.getInt("kept"), result.report.kept)
                assertEquals(report.getDouble("coverage"), Math.round(result.report.coverage * 1e4) / 1e4)
                assertEquals(report.getInt("no_signal_minutes"), result.report.noSignalMinutes)
            }
        }

    @Test
    fun `a manifest naming another preprocessing, or missing a constant, is refused`() {
        val other = JSONObject(golden.getJSONObject("preprocessing").toString()).put("name", "beats-to-rr-windows/2")
        assertTrue(assertThrows<BundleError> { RrPreprocessing.fromJson(other) }.message!!.contains("not implemented"))
        val missing = JSONObject(golden.getJSONObject("preprocessing").toString()).apply { remove("min_rr_coverage") }
        assertTrue(assertThrows<BundleError> { RrPreprocessing.fromJson(missing) }.message!!.contains("min_rr_coverage"))
        val unknown = JSONObject(golden.getJSONObject("preprocessing").toString()).put("lowpass_hz", 0.5)
        assertTrue(assertThrows<BundleError> { RrPreprocessing.fromJson(unknown) }.message!!.contains("lowpass_hz"))
    }
}
