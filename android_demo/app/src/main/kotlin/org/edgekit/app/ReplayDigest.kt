package org.edgekit.app

import org.edgekit.core.Bundle
import org.edgekit.core.Replay
import java.util.Locale

/** A minute of the strip: flagged (apnea), scored but not flagged, or without signal (neither). */
enum class MinuteState { FLAGGED, NOT_FLAGGED, NO_SIGNAL }

/**
 * What the screens show of a replay, read straight from the core's [Replay] (no android.* here: this
 * compiles and runs on the JVM against the core). The numbers are the core's; this only picks and rounds.
 */
class ReplayDigest(val replay: Replay, bundle: Bundle) {
    val minutes: Int = replay.probabilities.size
    val states: List<MinuteState> = List(minutes) { minute ->
        when {
            replay.decision.flags[minute] -> MinuteState.FLAGGED
            !replay.scored[minute] -> MinuteState.NO_SIGNAL
            else -> MinuteState.NOT_FLAGGED
        }
    }
    val flagged: Int = states.count { it == MinuteState.FLAGGED }
    val noSignal: Int = states.count { it == MinuteState.NO_SIGNAL }
    val threshold: Double = bundle.decision.threshold
    val ahiThreshold: Double = bundle.decision.ahiThreshold

    /** The window's samples that are the minute itself (the rest is its context), and the grid. */
    val gridHz: Double = bundle.preprocessing.gridHz
    val contextMinutes: Int = bundle.preprocessing.contextMinutes
    val samplesPerMinute: Int = bundle.preprocessing.samplesPerMinute
    val minuteSamples: IntRange = contextMinutes * samplesPerMinute until (contextMinutes + 1) * samplesPerMinute

    /** The estimated AHI to one decimal, "–" for a night without a minute of signal. */
    val estimatedAhi: String = formatAhi(replay.decision.estimatedAhi)

    /** The reference AHI and per-minute agreement where the night has labels (a record's .apn), from the core's JSON. */
    val reference: Pair<String, String>? = replay.night.labels?.let {
        val json = replay.toJson()
        formatAhi(json.optDouble("reference_ahi", Double.NaN)) to
            json.optDouble("minute_accuracy", Double.NaN).let { accuracy ->
                if (accuracy.isNaN()) DASH else String.format(Locale.US, "%.1f%%", accuracy * 100)
            }
    }

    fun window(minute: Int): FloatArray = replay.windows[minute]

    fun probability(minute: Int): String = String.format(Locale.US, "%.3f", replay.probabilities[minute])

    fun smoothed(minute: Int): String = String.format(Locale.US, "%.3f", replay.decision.smoothed[minute])

    companion object {
        const val DASH = "\u2013"

        fun formatAhi(ahi: Double): String = if (ahi.isNaN()) DASH else String.format(Locale.US, "%.1f", ahi)

        /** A minute's place in the night: "hh:mm" from the start of the recording. */
        fun clock(minute: Int): String = String.format(Locale.US, "%d:%02d", minute / 60, minute % 60)
    }
}
