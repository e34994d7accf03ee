package org.edgekit.core

import org.edgekit.core.EcgJson.counts
import org.edgekit.core.EcgJson.longs
import org.edgekit.core.EcgJson.strings
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/**
 * signal-quality/1 against `teacher.ecg_beats` and `teacher.minute_signal` on a real excerpt spoilt by a
 * flat, a saturated and a missing stretch (golden_ecg.py writes the recipe and the server's answers).
 */
class SignalQualityTest {
    private val specs = Golden.json("ecg_specs.json")
    private val case = Golden.json("signal_quality.json")
    private val fs = case.getDouble("fs")

    /** The recipe applied again: the excerpt's float32 mV, cut, then each stretch overwritten by its pattern. */
    private val signal: FloatArray = run {
        val excerpt = Golden.json("beats_${case.getString("excerpt")}.json")
        val gain = excerpt.getDouble("gain")
        val adu = Golden.ints(excerpt.getJSONArray("adu"))
        val signal = FloatArray(case.getInt("samples")) { (adu[it] / gain).toFloat() }
        val edits = case.getJSONArray("edits")
        for (e in 0 until edits.length()) {
            val edit = edits.getJSONObject(e)
            val pattern = edit.getJSONArray("pattern")
            val values = FloatArray(pattern.length()) { if (pattern.isNull(it)) Float.NaN else pattern.getDouble(it).toFloat() }
            for (i in edit.getInt("from") until edit.getInt("to")) signal[i] = values[(i - edit.getInt("from")) % values.size]
        }
        signal
    }

    @Test
    fun `the rules are the server's, and read back from their own JSON`() {
        val spec = SignalQualitySpec.fromJson(specs.getJSONObject("signal_quality"))
        assertEquals(spec, SignalQualitySpec.fromJson(spec.toJson()))
        val other = JSONObject(specs.getJSONObject("signal_quality").toString()).put("name", "signal-quality/2")
        assertThrows(BundleError::class.java) { SignalQualitySpec.fromJson(other) }
        val missing = JSONObject(specs.getJSONObject("signal_quality").toString()).apply { remove("flat_ptp_mv") }
        assertTrue(assertThrows(BundleError::class.java) { SignalQualitySpec.fromJson(missing) }.message!!.contains("flat_ptp_mv"))
    }

    @Test
    fun `flat, saturated and missing blocks are marked as the server marks them`() {
        val quality = assessEcg(signal, fs, Golden.quality)
        assertEquals(case.getInt("block_samples"), quality.blockSamples)
        assertEquals(strings(case.getJSONArray("reasons")), quality.reasons)
        val lost = case.getJSONObject("seconds_lost")
        assertEquals(QUALITY_REASONS.associateWith { lost.getDouble(it) }, quality.counts())
    }

    @Test
    fun `beats come only from usable ECG, as the server finds them`() {
        val result = ecgBeats(signal, fs, Golden.detector, Golden.quality)
        assertArrayEquals(longs(case.getJSONArray("beats")), result.beats)
        assertEquals(counts(case.getJSONObject("rejected")), result.rejected)
    }

    @Test
    fun `each minute's share with signal is the server's`() {
        val result = ecgBeats(signal, fs, Golden.detector, Golden.quality)
        val times = DoubleArray(result.beats.size) { result.beats[it] / fs }
        val minutes = case.getInt("n_minutes")
        val withQuality = minuteSignal(times, minutes, result.quality, case.getDouble("duration_s"), Golden.quality)
        assertArrayEquals(Golden.doubles(case.getJSONArray("minute_signal")), withQuality)
        assertArrayEquals(Golden.doubles(case.getJSONArray("minute_signal_beats_only")), minuteSignal(times, minutes, spec = Golden.quality))
    }

    @Test
    fun `beats in unusable blocks are dropped and counted per reason`() {
        val reject = case.getJSONObject("reject_beats")
        val (kept, dropped) = rejectBeats(longs(reject.getJSONArray("beats")), assessEcg(signal, fs, Golden.quality))
        assertArrayEquals(longs(reject.getJSONArray("kept")), kept)
        assertEquals(counts(reject.getJSONObject("dropped")), dropped)
    }
}
