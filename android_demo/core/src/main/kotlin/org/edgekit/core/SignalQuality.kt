package org.edgekit.core

import org.json.JSONObject
import java.math.BigDecimal
import java.math.RoundingMode
import kotlin.math.floor
import kotlin.math.max
import kotlin.math.min

/**
 * Where a night has signal, as the server's `teacher/_signal.py` rules it (`signal-quality/1`): the ECG is
 * judged in blocks (flat, saturated or missing samples), beats in unusable blocks are dropped, and a
 * minute without enough signal is neither flagged nor counted. Each block is judged alone, so a phone
 * reading a few seconds at a time marks the same blocks as a night read whole.
 */
const val SIGNAL_QUALITY = "signal-quality/1"

/** Why a block of ECG is unusable, in the order they win (the first that holds is reported). */
val QUALITY_REASONS = listOf("missing", "saturated", "flat")

/**
 * The signal-quality constants, by their names in the manifest (see `teacher/_signal.py` for the why of each).
 * No defaults: the values are the server's (`teacher.SIGNAL_QUALITY`), read from the bundle ([fromJson]).
 */
data class SignalQualitySpec(
    val blockS: Double,
    val flatPtpMv: Double,
    val saturatedPtpMv: Double,
    val maxBeatGapS: Double,
    val minMinuteSignal: Double,
    val minNightSignal: Double,
) {
    fun toJson(): JSONObject = JSONObject()
        .put("name", SIGNAL_QUALITY).put("block_s", blockS).put("flat_ptp_mv", flatPtpMv)
        .put("saturated_ptp_mv", saturatedPtpMv).put("max_beat_gap_s", maxBeatGapS)
        .put("min_minute_signal", minMinuteSignal).put("min_night_signal", minNightSignal)

    companion object {
        private val FIELDS = setOf(
            "block_s", "flat_ptp_mv", "saturated_ptp_mv", "max_beat_gap_s", "min_minute_signal", "min_night_signal",
        )

        /** The rules a manifest carries; refused ([BundleError]) when another rule, or a constant missing or unknown. */
        fun fromJson(o: JSONObject): SignalQualitySpec {
            val spec = SpecFields(o, SIGNAL_QUALITY, FIELDS, "signal-quality rules")
            return SignalQualitySpec(
                blockS = spec.double("block_s"), flatPtpMv = spec.double("flat_ptp_mv"),
                saturatedPtpMv = spec.double("saturated_ptp_mv"), maxBeatGapS = spec.double("max_beat_gap_s"),
                minMinuteSignal = spec.double("min_minute_signal"), minNightSignal = spec.double("min_night_signal"),
            )
        }
    }
}

/**
 * The ECG quality of one recording, a mark per block: `reasons[b]` is "" when block `b` is usable,
 * else one of [QUALITY_REASONS]. The last block may be shorter than `blockSamples`.
 */
class SignalQuality(val fs: Double, val nSamples: Int, val blockSamples: Int, val reasons: List<String>) {
    val usable: BooleanArray = BooleanArray(reasons.size) { reasons[it] == "" }

    fun isUsableSample(i: Int): Boolean = usable[i / blockSamples]

    /** Seconds of signal lost per reason (to 0.01 s, as Python's `round(x, 2)`). */
    fun counts(): Map<String, Double> = QUALITY_REASONS.associateWith { reason ->
        var samples = 0L
        for (b in reasons.indices) {
            if (reasons[b] == reason) samples += min(blockSamples.toLong(), nSamples - b.toLong() * blockSamples)
        }
        BigDecimal(samples.toDouble() / fs).setScale(2, RoundingMode.HALF_EVEN).toDouble()
    }
}

/** Marks each block of an ECG in mV as usable or not, and why (NaN samples are "missing"). */
fun assessEcg(signal: FloatArray, fs: Double, spec: SignalQualitySpec): SignalQuality {
    if (!(fs > 0)) throw NightError("sampling rate $fs Hz: an ECG needs a positive rate")
    val block = max(1, pythonRound(spec.blockS * fs))
    val nBlocks = (signal.size + block - 1) / block
    val reasons = List(nBlocks) { b ->
        var missing = false
        var lowest = Double.POSITIVE_INFINITY
        var highest = Double.NEGATIVE_INFINITY
        for (i in b * block until min(signal.size, (b + 1) * block)) {
            val v = signal[i].toDouble()
            if (v.isNaN()) missing = true else {
                lowest = min(lowest, v)
                highest = max(highest, v)
            }
        }
        val ptp = highest - lowest // NaN for a block with no number in it (then "missing" anyway)
        when {
            missing -> "missing"
            ptp > spec.saturatedPtpMv -> "saturated"
            ptp < spec.flatPtpMv -> "flat"
            else -> ""
        }
    }
    return SignalQuality(fs, signal.size, block, reasons)
}

/**
 * Share of each minute with signal: inside the recording (`durationS`), in usable ECG blocks (when the
 * ECG's `quality` is known) and not inside a stretch of more than `max_beat_gap_s` without a beat. Judged
 * on a 0.1 s grid, at the middle of each step.
 */
fun minuteSignal(
    beatTimes: DoubleArray,
    nMinutes: Int,
    quality: SignalQuality? = null,
    durationS: Double? = null,
    spec: SignalQualitySpec,
): DoubleArray {
    // Each instant lies between two beats (the recording's start and end count as bounds).
    val endS = durationS ?: max(nMinutes * 60.0, beatTimes.lastOrNull() ?: 0.0)
    val bounds = doubleArrayOf(0.0) + beatTimes + doubleArrayOf(endS)
    val nGaps = bounds.size - 1
    return DoubleArray(nMinutes) { minute ->
        var withSignal = 0
        for (step in minute * 600 until (minute + 1) * 600) {
            val t = step / 10.0 + 0.05
            if (durationS != null && !(t < durationS)) continue
            if (quality != null) {
                val block = min(floorDivide(t * quality.fs, quality.blockSamples.toDouble()).toLong(), quality.reasons.size - 1L)
                if (!(quality.usable[block.toInt()] && t * quality.fs < quality.nSamples)) continue
            }
            val between = (lastAtOrBefore(bounds, t)).coerceIn(0, nGaps - 1)
            if (bounds[between + 1] - bounds[between] <= spec.maxBeatGapS) withSignal++
        }
        withSignal / 600.0
    }
}

/** The beats that lie in usable ECG, and how many were dropped per reason. */
fun rejectBeats(beatSamples: LongArray, quality: SignalQuality): Pair<LongArray, Map<String, Int>> {
    val dropped = QUALITY_REASONS.associateWith { 0 }.toMutableMap()
    val kept = beatSamples.filter { beat ->
        val reason = quality.reasons[min(Math.floorDiv(beat, quality.blockSamples.toLong()), quality.reasons.size - 1L).toInt()]
        if (reason != "") dropped[reason] = dropped.getValue(reason) + 1
        reason == ""
    }
    return kept.toLongArray() to dropped
}

/** R peaks of a one-lead ECG where it has signal, its quality marks, and the beats dropped per reason. */
class EcgBeats(val beats: LongArray, val quality: SignalQuality, val rejected: Map<String, Int>)

/**
 * R peaks of a one-lead ECG in mV ([detectBeats], ecg-to-beats/1) where it has signal. Unusable blocks
 * are zeroed before detection, so a saturated stretch cannot raise the detector's adaptive thresholds
 * over the next minutes, and any beat found inside one is dropped (and counted).
 */
fun ecgBeats(
    signal: FloatArray,
    fs: Double,
    detector: BeatDetectorSpec,
    quality: SignalQualitySpec,
): EcgBeats {
    val marks = assessEcg(signal, fs, quality)
    val cleaned = DoubleArray(signal.size) { if (marks.isUsableSample(it)) nanToNum(signal[it].toDouble()) else 0.0 }
    val (beats, rejected) = rejectBeats(detectBeats(cleaned, fs, detector), marks)
    return EcgBeats(beats, marks, rejected)
}

/** numpy's `nan_to_num`: NaN to 0, infinities to the largest finite values. */
private fun nanToNum(x: Double): Double = when {
    x.isNaN() -> 0.0
    x == Double.POSITIVE_INFINITY -> Double.MAX_VALUE
    x == Double.NEGATIVE_INFINITY -> -Double.MAX_VALUE
    else -> x
}

/** numpy's float `//` (via its divmod), which can differ from floor(a / b) where a / b rounds up to a whole number. */
private fun floorDivide(a: Double, b: Double): Double {
    val mod = a % b
    var div = (a - mod) / b
    if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0
    if (div == 0.0) return Math.copySign(0.0, a / b)
    var whole = floor(div)
    if (div - whole > 0.5) whole += 1.0
    return whole
}

/** `np.searchsorted(bounds, t, side="right") - 1`: the last bound at or before `t` (-1 before the first). */
private fun lastAtOrBefore(bounds: DoubleArray, t: Double): Int {
    var lo = 0
    var hi = bounds.size
    while (lo < hi) {
        val mid = (lo + hi) ushr 1
        if (bounds[mid] <= t) lo = mid + 1 else hi = mid
    }
    return lo - 1
}
