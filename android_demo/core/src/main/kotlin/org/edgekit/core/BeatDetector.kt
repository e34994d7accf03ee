package org.edgekit.core

import org.json.JSONArray
import org.json.JSONObject
import kotlin.math.abs
import kotlin.math.max
import kotlin.math.min

/**
 * The kit's R-peak detector, `ecg-to-beats/1`, as the server's `teacher/_beats.py` runs it: band-pass,
 * first difference, square, moving-window integration; every local maximum of the integrated signal
 * is a candidate, classified against adaptive signal and noise levels (refractory period, T-wave slope
 * test, search-back), and each beat is placed on its R peak. The constants come from the bundle's
 * manifest; the arithmetic follows numpy's step for step so the phone finds the server's beats, sample
 * for sample.
 */
const val ECG_TO_BEATS = "ecg-to-beats/1"

/** The rates the detector takes (Hz): below, a QRS is a few samples; above, nothing gains. */
const val BEAT_DETECTOR_MIN_FS = 100.0
const val BEAT_DETECTOR_MAX_FS = 1000.0

/**
 * The detector's constants, by their names in the manifest (times in seconds: one spec for every rate).
 * No defaults: the values are the server's (`teacher.BEAT_DETECTOR`), read from the bundle ([fromJson]).
 */
data class BeatDetectorSpec(
    val bandHz: Pair<Double, Double>,
    val bandOrder: Int,
    val integrationS: Double,
    val learningS: Double,
    val refractoryS: Double,
    val tWaveS: Double,
    val tWaveSlope: Double,
    val thresholdFraction: Double,
    val signalWeight: Double,
    val noiseWeight: Double,
    val searchBackRr: Double,
    val searchBackFraction: Double,
    val rrBeats: Int,
    val relearnS: Double,
    val peakWindowS: Double,
    val candidateS: Double,
) {
    /** `BeatDetectorSpec.to_dict()`: the name and every constant. */
    fun toJson(): JSONObject = JSONObject()
        .put("name", ECG_TO_BEATS)
        .put("band_hz", JSONArray().put(bandHz.first).put(bandHz.second))
        .put("band_order", bandOrder).put("integration_s", integrationS).put("learning_s", learningS)
        .put("refractory_s", refractoryS).put("t_wave_s", tWaveS).put("t_wave_slope", tWaveSlope)
        .put("threshold_fraction", thresholdFraction).put("signal_weight", signalWeight)
        .put("noise_weight", noiseWeight).put("search_back_rr", searchBackRr)
        .put("search_back_fraction", searchBackFraction).put("rr_beats", rrBeats)
        .put("relearn_s", relearnS).put("peak_window_s", peakWindowS).put("candidate_s", candidateS)

    companion object {
        private val FIELDS = setOf(
            "band_hz", "band_order", "integration_s", "learning_s", "refractory_s", "t_wave_s", "t_wave_slope",
            "threshold_fraction", "signal_weight", "noise_weight", "search_back_rr", "search_back_fraction",
            "rr_beats", "relearn_s", "peak_window_s", "candidate_s",
        )

        /**
         * The detector a manifest carries (`BeatDetectorSpec.from_dict`): refused ([BundleError]) when it
         * is another detector or a constant is missing or unknown, so no default is ever taken silently.
         */
        fun fromJson(o: JSONObject): BeatDetectorSpec {
            val spec = SpecFields(o, ECG_TO_BEATS, FIELDS, "beat detector")
            val band = spec.doubles("band_hz")
            if (band.size != 2) throw BundleError("beat detector $ECG_TO_BEATS: band_hz must be [low, high] Hz")
            return BeatDetectorSpec(
                bandHz = band[0] to band[1], bandOrder = spec.int("band_order"),
                integrationS = spec.double("integration_s"), learningS = spec.double("learning_s"),
                refractoryS = spec.double("refractory_s"), tWaveS = spec.double("t_wave_s"),
                tWaveSlope = spec.double("t_wave_slope"), thresholdFraction = spec.double("threshold_fraction"),
                signalWeight = spec.double("signal_weight"), noiseWeight = spec.double("noise_weight"),
                searchBackRr = spec.double("search_back_rr"), searchBackFraction = spec.double("search_back_fraction"),
                rrBeats = spec.int("rr_beats"), relearnS = spec.double("relearn_s"),
                peakWindowS = spec.double("peak_window_s"), candidateS = spec.double("candidate_s"),
            )
        }
    }
}

/** R-peak sample indices (sorted, unique) of a one-lead ECG in mV sampled at `fs` Hz. */
fun detectBeats(signal: DoubleArray, fs: Double, spec: BeatDetectorSpec): LongArray {
    val detector = StreamingBeatDetector(fs, spec)
    return detector.feed(signal) + detector.finish()
}

/**
 * The detector a chunk at a time: [feed] returns the beats that are final, [finish] the rest. Filters
 * carry their state and the candidate test looks ahead a fixed number of samples only, so any chunking
 * gives exactly the beats of [detectBeats] on the whole signal; the output lags the input by about a beat.
 */
class StreamingBeatDetector(fs: Double, val spec: BeatDetectorSpec) {
    val fs: Double = fs

    private class Candidate(val index: Long, val height: Double, val slope: Double, val peak: Long)

    private val filter: SosFilter
    private val width: Int
    private val peakHalf: Int
    private val spacing: Int
    private val keep: Int
    private val lookahead: Int

    init {
        if (!(fs >= BEAT_DETECTOR_MIN_FS && fs <= BEAT_DETECTOR_MAX_FS)) {
            throw NightError("the beat detector runs at 100-1000 Hz, not $fs Hz")
        }
        require(spec.rrBeats >= 1) { "rr_beats must be at least 1, not ${spec.rrBeats}" }
        filter = SosFilter(butterBandpassSos(spec.bandOrder, spec.bandHz.first, spec.bandHz.second, fs))
        width = max(1, pythonRound(spec.integrationS * fs))
        peakHalf = max(1, pythonRound(spec.peakWindowS * fs))
        spacing = max(1, pythonRound(spec.candidateS * fs))
        // Samples kept behind the newest: the integration window, the R-peak search around a QRS centre
        // up to a window behind its candidate, and one for the derivative.
        keep = 2 * width + 4 * peakHalf + spacing + 2
        lookahead = max(2 * peakHalf, spacing) + 1
    }

    private val windowMean = WindowMean(width)
    private var energyTail = DoubleArray(width - 1) // the energies before the next chunk
    private val raw = Series()
    private val band = Series()
    private val slope = Series() // |first difference| x fs
    private val integrated = Series()
    private var start = 0L // sample index of the buffers' first element
    private var n = 0L // samples fed
    private var previousBand = 0.0
    private var nextCandidate = 1L // first sample not yet tested as a local maximum
    private var learning: MutableList<Candidate>? = mutableListOf()
    private var signalLevel = 0.0
    private var noiseLevel = 0.0
    private val beats = mutableListOf<Candidate>()
    private var noiseSinceBeat = mutableListOf<Candidate>()
    private val rr = mutableListOf<Long>()
    private var recentRr = 0.0
    private var emitted = 0
    private var lastPeak = -1L

    /** Takes the next samples (mV); returns the beats now final. NaN must be marked as no signal first ([ecgBeats]). */
    fun feed(chunk: DoubleArray): LongArray {
        if (chunk.any { !it.isFinite() }) {
            throw NightError("the ECG holds NaN or infinite samples: mark them as no signal first (ecgBeats)")
        }
        if (chunk.isNotEmpty()) {
            filter(chunk)
            findCandidates(final = false)
        }
        return take(final = false)
    }

    fun feed(chunk: FloatArray): LongArray = feed(DoubleArray(chunk.size) { chunk[it].toDouble() })

    /** The end of the signal: every remaining beat. */
    fun finish(): LongArray {
        findCandidates(final = true)
        return take(final = true)
    }

    private fun filter(chunk: DoubleArray) {
        val filtered = filter.filter(chunk)
        val steepness = DoubleArray(chunk.size)
        val energy = energyTail.copyOf(width - 1 + chunk.size)
        for (i in chunk.indices) {
            val d = (filtered[i] - if (i == 0) previousBand else filtered[i - 1]) * fs
            steepness[i] = abs(d)
            energy[width - 1 + i] = d * d
        }
        previousBand = filtered.last()
        raw.append(chunk)
        band.append(filtered)
        slope.append(steepness)
        integrated.append(DoubleArray(chunk.size) { windowMean.at(energy, it) })
        energyTail = energy.copyOfRange(energy.size - (width - 1), energy.size)
        n += chunk.size
    }

    /** A candidate: the largest integrated value within `candidate_s` either side, higher than the one before it. */
    private fun findCandidates(final: Boolean) {
        val last = if (final) n else n - lookahead
        val first = nextCandidate
        if (last <= first) return
        val y = integrated
        val at = mutableListOf<Int>()
        for (i in (first - start).toInt() until (last - start).toInt()) {
            val v = y[i]
            if (!(v > y[i - 1])) continue
            var largest = true
            for (j in max(0, i - spacing)..min(y.size - 1, i + spacing)) {
                if (y[j] > v) {
                    largest = false
                    break
                }
            }
            if (largest) at.add(i)
        }
        for (position in at) classify(candidate(position))
        nextCandidate = last
        val drop = (nextCandidate - keep - start).toInt()
        if (drop > 0) {
            for (series in listOf(raw, band, slope, integrated)) series.dropFirst(drop)
            start += drop
        }
    }

    /**
     * The candidate at buffer position `at`: the steepest band-passed slope in its integration window, and
     * its R peak, the largest deviation of the ECG from its local median within `peak_window_s` of the
     * band-passed QRS's centre. Positions are clipped to the buffer (at the very start a window is shorter).
     */
    private fun candidate(at: Int): Candidate {
        val last = raw.size - 1
        fun clip(i: Int) = min(max(i, 0), last)
        var steepest = slope[clip(at - width + 1)]
        var centre = clip(at - width + 1)
        for (k in at - width + 1..at) {
            val j = clip(k)
            if (slope[j] > steepest) steepest = slope[j]
            if (abs(band[j]) > abs(band[centre])) centre = j
        }
        val half = peakHalf
        val around = DoubleArray(4 * half + 1) { raw[clip(centre - 2 * half + it)] }
        val median = around.sortedArray()[2 * half]
        var best = 0
        for (k in 1..2 * half) {
            if (abs(around[half + k] - median) > abs(around[half + best] - median)) best = k
        }
        return Candidate(start + at, integrated[at], steepest, start + centre - half + best)
    }

    private fun threshold() = noiseLevel + spec.thresholdFraction * (signalLevel - noiseLevel)

    /** The decision, one candidate at a time in time order. */
    private fun classify(candidate: Candidate) {
        val learned = learning
        if (learned != null) {
            if (candidate.index < spec.learningS * fs) {
                learned.add(candidate)
                return
            }
            learned.add(candidate)
            learning = null
            signalLevel = learned.maxOf { it.height }
            noiseLevel = 0.0
            learned.forEach(::classify)
            return
        }
        if (beats.isNotEmpty()) {
            val last = beats.last()
            if (candidate.index - last.index < spec.refractoryS * fs) {
                if (candidate.height > last.height && candidate.height > threshold()) beats[beats.size - 1] = candidate
                return
            }
            searchBack(candidate.index)
        }
        if (candidate.height > threshold() && !isTWave(candidate)) {
            addBeat(candidate, spec.signalWeight)
        } else {
            noiseLevel += spec.noiseWeight * (candidate.height - noiseLevel)
            noiseSinceBeat.add(candidate)
        }
    }

    private fun isTWave(candidate: Candidate): Boolean {
        val last = beats.lastOrNull() ?: return false
        return candidate.index - last.index < spec.tWaveS * fs && candidate.slope < spec.tWaveSlope * last.slope
    }

    /** Beats missed in the gap before `index`: the tallest candidate above a lowered threshold. */
    private fun searchBack(index: Long) {
        while (rr.isNotEmpty() && noiseSinceBeat.isNotEmpty()) {
            val last = beats.last().index
            if (index - last <= spec.searchBackRr * recentRr) return
            val gap = noiseSinceBeat.filter {
                it.index - last >= spec.refractoryS * fs && index - it.index >= spec.refractoryS * fs
            }
            val tallest = gap.maxByOrNull { it.height } ?: return
            if (tallest.height <= spec.searchBackFraction * threshold()) {
                // With no beat for `relearn_s` the signal level was set by an artefact: restart from this one.
                if (index - last < spec.relearnS * fs) return
                signalLevel = tallest.height
            }
            noiseSinceBeat = noiseSinceBeat.filter { it.index > tallest.index }.toMutableList()
            addBeat(tallest, 0.25, keepNoise = true)
        }
    }

    private fun addBeat(candidate: Candidate, weight: Double, keepNoise: Boolean = false) {
        signalLevel += weight * (candidate.height - signalLevel)
        if (beats.isNotEmpty()) {
            rr.add(candidate.index - beats.last().index)
            while (rr.size > spec.rrBeats) rr.removeAt(0)
            val sorted = rr.sorted()
            val middle = sorted.size / 2
            recentRr = if (sorted.size % 2 == 1) sorted[middle].toDouble() else (sorted[middle - 1] + sorted[middle]) / 2.0
        }
        beats.add(candidate)
        if (!keepNoise) noiseSinceBeat = mutableListOf()
    }

    private fun take(final: Boolean): LongArray {
        val learned = learning
        if (final && !learned.isNullOrEmpty()) { // a signal shorter than the learning period
            learning = null
            signalLevel = learned.maxOf { it.height }
            learned.forEach(::classify)
        }
        val ready = if (final) beats.size else max(0, beats.size - 1)
        val out = mutableListOf<Long>()
        for (i in emitted until ready) {
            val peak = beats[i].peak
            if (peak > lastPeak) { // two QRS centres can settle on one R peak
                out.add(peak)
                lastPeak = peak
            }
        }
        emitted = ready
        // Beats before the newest are final: keep only what the decision still reads.
        if (beats.size > 1) {
            emitted -= beats.size - 1
            beats.subList(0, beats.size - 1).clear()
        }
        return out.toLongArray()
    }
}

/** Python's `round(x)` to an int: halves go to the even neighbour. */
internal fun pythonRound(x: Double): Int = Math.rint(x).toInt()

/**
 * The moving-window mean of `width` energies, summed in window order, each energy times 1/width: the
 * order teacher/_beats.py fixes with elementwise steps, so both give the same bits on any CPU (no fused
 * multiply-add: the JVM never fuses, and Math.fma is missing on older Android).
 */
internal class WindowMean(private val width: Int) {
    private val weight = 1.0 / width

    fun at(values: DoubleArray, from: Int): Double {
        var sum = 0.0
        for (offset in 0 until width) sum += values[from + offset] * weight
        return sum
    }
}

/** A growable run of samples whose oldest ones can be dropped. */
private class Series {
    private var data = DoubleArray(4096)
    var size = 0
        private set

    operator fun get(i: Int): Double = data[i]

    fun append(values: DoubleArray) {
        if (size + values.size > data.size) data = data.copyOf(max(2 * data.size, size + values.size))
        values.copyInto(data, size)
        size += values.size
    }

    fun dropFirst(count: Int) {
        data.copyInto(data, 0, count, size)
        size -= count
    }
}
