package org.edgekit.core

import org.json.JSONObject
import kotlin.math.floor
import kotlin.math.roundToInt

/**
 * `beats-to-rr-windows/1` (teacher/_rr.py, teacher.night_windows), its constants read from the bundle's
 * manifest: beat times -> RR intervals (out-of-range and ectopic ones dropped) -> linear resampling on a
 * `gridHz` grid, edges held -> one window per minute with `contextMinutes` each side -> the night
 * rescaled to its median RR. Arithmetic in double, windows in float, as numpy does.
 */
data class RrPreprocessing(
    val rrMinS: Double,
    val rrMaxS: Double,
    val ectopicTolerance: Double,
    val ectopicNeighbours: Int,
    val gridHz: Double,
    val contextMinutes: Int,
    val windowSamples: Int,
    val nightMedianRrS: Double?,
    val minRrCoverage: Double,
    val detector: BeatDetectorSpec,
    val quality: SignalQualitySpec,
) {
    val samplesPerMinute: Int get() = (60 * gridHz).roundToInt()

    init {
        if (samplesPerMinute.toDouble() != 60 * gridHz) throw BundleError("grid $gridHz Hz: not a whole number of samples a minute")
        if ((2 * contextMinutes + 1) * samplesPerMinute != windowSamples) {
            throw BundleError("window of $windowSamples samples: $gridHz Hz with $contextMinutes context minutes gives " +
                "${(2 * contextMinutes + 1) * samplesPerMinute}")
        }
    }

    /** RR intervals of increasing beat times, with the rejected ones counted by reason. */
    fun cleanRr(beatTimes: DoubleArray): RrSeries {
        if (beatTimes.any { !it.isFinite() }) throw NightError("beat times contain NaN or infinite values")
        val rr = DoubleArray(maxOf(0, beatTimes.size - 1)) { beatTimes[it + 1] - beatTimes[it] }
        if (rr.any { it <= 0 }) throw NightError("beat times are not strictly increasing")
        val inRange = BooleanArray(rr.size) { rr[it] >= rrMinS && rr[it] <= rrMaxS }
        val candidates = rr.indices.filter { inRange[it] }
        val candidateRr = DoubleArray(candidates.size) { rr[candidates[it]] }
        val keptTimes = ArrayList<Double>()
        val keptRr = ArrayList<Double>()
        for (i in candidateRr.indices) {
            // The median of up to `ectopicNeighbours` in-range intervals each side, the interval itself left out.
            val neighbours = ((i - ectopicNeighbours)..(i + ectopicNeighbours))
                .filter { it != i && it >= 0 && it < candidateRr.size }.map { candidateRr[it] }
            val reference = if (neighbours.isEmpty()) candidateRr[i] else median(neighbours.toDoubleArray())
            if (Math.abs(candidateRr[i] - reference) <= ectopicTolerance * reference) {
                keptTimes.add(beatTimes[candidates[i] + 1])
                keptRr.add(candidateRr[i])
            }
        }
        return RrSeries(keptTimes.toDoubleArray(), keptRr.toDoubleArray(), rr.size, rr.size - candidates.size,
            candidates.size - keptRr.size)
    }

    /** The RR series on the grid over [startS, stopS), as np.interp (values held beyond the ends). */
    fun resample(series: RrSeries, startS: Double, stopS: Double): FloatArray {
        if (series.kept == 0) throw NightError("no valid RR intervals to resample")
        val n = Math.round((stopS - startS) * gridHz).toInt()
        val xs = series.times
        val ys = series.rr
        var j = 0
        return FloatArray(n) { k ->
            val x = startS + k / gridHz
            while (j + 1 < xs.size && xs[j + 1] <= x) j++
            val value = when {
                x <= xs[0] -> ys[0]
                x >= xs[xs.size - 1] -> ys[ys.size - 1]
                xs[j] == x -> ys[j]
                else -> (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]) * (x - xs[j]) + ys[j]
            }
            value.toFloat()
        }
    }

    /** One window per minute, the minute and its context, edges held; not yet night-rescaled. */
    fun minuteWindows(series: RrSeries, minutes: Int): Array<FloatArray> {
        val night = resample(series, -60.0 * contextMinutes, 60.0 * (minutes + contextMinutes))
        return Array(minutes) { m -> night.copyOfRange(m * samplesPerMinute, m * samplesPerMinute + windowSamples) }
    }

    /** Share of each minute covered by kept intervals (an interval counts in the minute of its middle). */
    fun validCoverage(series: RrSeries, minutes: Int): DoubleArray {
        val covered = DoubleArray(minutes)
        for (i in 0 until series.kept) {
            val minute = floor((series.times[i] - series.rr[i] / 2) / 60.0).toInt()
            if (minute in 0 until minutes) covered[minute] += series.rr[i]
        }
        return DoubleArray(minutes) { (covered[it] / 60.0).coerceIn(0.0, 1.0) }
    }

    /**
     * Every minute's window, the minutes with signal, and the report (`teacher.night_windows`): refuses a
     * night with too few valid beats or too little signal, saying why.
     */
    fun nightWindows(night: Night): NightWindows {
        val series = try {
            cleanRr(night.beatTimes)
        } catch (error: NightError) {
            throw NightError("${night.name}: beats in ${night.beatSource} unusable (${error.message})")
        }
        val minutes = night.minutes
        val coverage = validCoverage(series, minutes).average()
        if (series.kept < 2 || coverage < minRrCoverage) {
            throw NightError("${night.name}: too few valid beats in ${night.beatSource} (${series.kept} kept of " +
                "${series.intervals} intervals, covering ${Math.round(coverage * 100)}% of $minutes minutes; need " +
                "${Math.round(minRrCoverage * 100)}%)")
        }
        val share = minuteSignal(night.beatTimes, minutes, night.quality, night.samples / night.fs, quality)
        val scored = BooleanArray(minutes) { share[it] >= quality.minMinuteSignal }
        val withSignal = scored.count { it }
        if (withSignal == 0 || withSignal.toDouble() / minutes < quality.minNightSignal) {
            throw NightError("${night.name}: too little signal (${night.beatSource}): $withSignal of $minutes minutes " +
                "have signal, a night needs ${Math.round(quality.minNightSignal * 100)}%")
        }
        val windows = minuteWindows(series, minutes)
        if (nightMedianRrS != null) {
            val scale = nightMedianRrS / median(series.rr)
            for (window in windows) for (i in window.indices) window[i] = (window[i] * scale).toFloat()
        }
        val report = RrReport(series.intervals, series.outOfRange, series.ectopic, series.kept, coverage, minutes - withSignal)
        return NightWindows(windows, scored, report)
    }

    companion object {
        const val NAME = "beats-to-rr-windows/1"
        private val FIELDS = setOf("input", "rr_limits_s", "ectopic", "grid_hz", "context_minutes", "window_samples",
            "edges", "night_median_rr_s", "min_rr_coverage", "normalisation", "ecg_to_beats", "rr_input", "signal_quality")

        fun fromJson(json: JSONObject): RrPreprocessing {
            val spec = SpecFields(json, NAME, FIELDS, "preprocessing")
            val limits = spec.doubles("rr_limits_s")
            if (limits.size != 2) throw BundleError("preprocessing $NAME: rr_limits_s must be [min, max]")
            val ectopic = json.getJSONObject("ectopic")
            return RrPreprocessing(
                rrMinS = limits[0], rrMaxS = limits[1],
                ectopicTolerance = ectopic.getDouble("tolerance"),
                ectopicNeighbours = ectopic.getInt("neighbours_each_side"),
                gridHz = spec.double("grid_hz"),
                contextMinutes = spec.int("context_minutes"),
                windowSamples = spec.int("window_samples"),
                nightMedianRrS = if (json.isNull("night_median_rr_s")) null else spec.double("night_median_rr_s"),
                minRrCoverage = spec.double("min_rr_coverage"),
                detector = BeatDetectorSpec.fromJson(json.getJSONObject("ecg_to_beats")),
                quality = SignalQualitySpec.fromJson(json.getJSONObject("signal_quality")),
            )
        }
    }
}

class RrSeries(val times: DoubleArray, val rr: DoubleArray, val intervals: Int, val outOfRange: Int, val ectopic: Int) {
    val kept: Int get() = rr.size
}

/** What RR cleaning kept and dropped, and how many minutes had no signal (the replay's `rr_cleaning`). */
data class RrReport(val intervals: Int, val outOfRange: Int, val ectopic: Int, val kept: Int, val coverage: Double,
                    val noSignalMinutes: Int)

class NightWindows(val windows: Array<FloatArray>, val scored: BooleanArray, val report: RrReport)

/** numpy's median: the middle value, or the mean of the two middle values of an even count. */
fun median(values: DoubleArray): Double {
    val sorted = values.sortedArray()
    val middle = sorted.size / 2
    return if (sorted.size % 2 == 1) sorted[middle] else (sorted[middle - 1] + sorted[middle]) / 2
}
