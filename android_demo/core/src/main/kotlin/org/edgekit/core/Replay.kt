package org.edgekit.core

import org.json.JSONArray
import org.json.JSONObject

/**
 * A night through a bundle, as `edgekit replay` does it (edge_export/_replay.py): the bundle's
 * preprocessing, each minute's window through the model alone, the bundle's decision rule and severity.
 */
class Replay(
    val night: Night,
    /** Each minute's model input (night-rescaled RR, s, on the grid), for showing a minute's evidence. */
    val windows: Array<FloatArray>,
    val bundleId: String,
    val probabilities: FloatArray,
    val scored: BooleanArray,
    val decision: NightDecision,
    val severity: String?,
    val report: RrReport,
    val runtimeSeconds: Double,
    private val decisionRule: DecisionRule,
) {
    /** The same fields as `edgekit replay --json`, NaN as null. */
    fun toJson(): JSONObject {
        val minutes = probabilities.size
        val json = JSONObject()
        json.put("record", night.name)
        json.put("bundle", bundleId)
        json.put("minutes", minutes)
        json.put("probability", JSONArray(probabilities.map { round(it.toDouble(), 5) }))
        json.put("smoothed", JSONArray(decision.smoothed.map { round(it.toDouble(), 5) }))
        json.put("flags", JSONArray(decision.flags.map { if (it) 1 else 0 }))
        json.put("signal", JSONArray(scored.map { if (it) 1 else 0 }))
        json.put("no_signal_minutes", scored.count { !it })
        json.put("estimated_ahi", number(decision.estimatedAhi))
        json.put("apneic", decision.apneic)
        json.put("severity", severity ?: JSONObject.NULL)
        json.put("runtime_seconds", round(runtimeSeconds, 4))
        json.put("rr_cleaning", JSONObject().apply {
            put("intervals", report.intervals)
            put("out_of_range", report.outOfRange)
            put("ectopic", report.ectopic)
            put("kept", report.kept)
            put("coverage", round(report.coverage, 4))
            put("no_signal_minutes", report.noSignalMinutes)
            night.quality?.let { quality -> put("no_signal_seconds", JSONObject(quality.counts())) }
        })
        json.put("beat_source", night.beatSource)
        json.put("rejected_beats", JSONObject(night.rejectedBeats))
        night.labels?.let { all ->
            val labels = all.copyOf(minutes).map { it == 1 }.toBooleanArray()
            val referenceAhi = estimatedAhi(labels, BooleanArray(minutes) { true })
            json.put("reference", JSONArray(labels.map { if (it) 1 else 0 }))
            json.put("reference_ahi", number(referenceAhi))
            json.put("reference_apneic", decisionRule.isApneic(referenceAhi))
            val agree = (0 until minutes).filter { scored[it] }
            json.put("minute_accuracy", if (agree.isEmpty()) JSONObject.NULL
                else agree.count { decision.flags[it] == labels[it] }.toDouble() / agree.size)
        }
        return json
    }

    companion object {
        fun of(bundle: Bundle, night: Night, runner: ModelRunner): Replay {
            val windowed = bundle.preprocessing.nightWindows(night)
            val started = System.nanoTime()
            val probabilities = FloatArray(windowed.windows.size) { minute ->
                val window = windowed.windows[minute]
                bundle.checkInput(window)
                runner.probabilities(window).last()
            }
            val seconds = (System.nanoTime() - started) / 1e9
            val decided = bundle.decision.apply(probabilities, windowed.scored)
            return Replay(night, windowed.windows, bundle.id, probabilities, windowed.scored, decided, bundle.severity.of(decided.estimatedAhi),
                windowed.report, seconds, bundle.decision)
        }

        private fun round(value: Double, digits: Int): Any {
            if (!value.isFinite()) return JSONObject.NULL
            val scale = Math.pow(10.0, digits.toDouble())
            return Math.round(value * scale) / scale
        }

        private fun number(value: Double): Any = if (value.isNaN()) JSONObject.NULL else value
    }
}
