package org.edgekit.core

import org.json.JSONObject

/**
 * `smoothed-threshold/1` (teacher/_decision.py): each minute's apnea probability averaged over
 * `smoothingMinutes` each side (minutes without signal left out), flagged at `threshold`; the night is
 * apneic when its flagged minutes per hour with signal (the estimated AHI) exceed `ahiThreshold`.
 */
data class DecisionRule(
    val smoothingMinutes: Int,
    val threshold: Double,
    val ahiThreshold: Double,
    val positiveLabel: String,
) {
    /** Smoothed probabilities in minute order: double sums, float results, as numpy's convolve then astype(float32). */
    fun smooth(probabilities: FloatArray, scored: BooleanArray): FloatArray {
        val n = probabilities.size
        val half = smoothingMinutes
        if (half <= 0 || n == 0) return probabilities.copyOf()
        val kernel = 1.0 / (2 * half + 1)
        val allScored = scored.all { it }
        return FloatArray(n) { minute ->
            // Edges padded with the first / last value, as np.pad(mode="edge"); a minute without signal weighs 0.
            var total = 0.0
            var count = 0.0
            for (offset in -half..half) {
                val i = (minute + offset).coerceIn(0, n - 1)
                val weight = if (scored[i]) 1.0 else 0.0
                total += probabilities[i] * weight * kernel
                count += weight * kernel
            }
            when {
                allScored -> total.toFloat()
                count > 0 -> (total / count).toFloat()
                else -> 0f
            }
        }
    }

    fun flags(smoothed: FloatArray, scored: BooleanArray): BooleanArray =
        BooleanArray(smoothed.size) { smoothed[it] >= threshold && scored[it] }

    fun isApneic(ahi: Double): Boolean = ahi > ahiThreshold

    fun apply(probabilities: FloatArray, scored: BooleanArray): NightDecision {
        val smoothed = smooth(probabilities, scored)
        val flags = flags(smoothed, scored)
        val ahi = estimatedAhi(flags, scored)
        return NightDecision(smoothed, flags, ahi, isApneic(ahi))
    }

    companion object {
        const val NAME = "smoothed-threshold/1"

        fun fromJson(json: JSONObject): DecisionRule {
            val spec = SpecFields(json, NAME, setOf("smoothing_minutes", "threshold", "ahi_threshold", "positive_label"), "decision rule")
            return DecisionRule(spec.int("smoothing_minutes"), spec.double("threshold"), spec.double("ahi_threshold"),
                spec.string("positive_label"))
        }
    }
}

class NightDecision(val smoothed: FloatArray, val flags: BooleanArray, val estimatedAhi: Double, val apneic: Boolean)

/** Apnea minutes per hour of the minutes with signal; NaN for a night without any. */
fun estimatedAhi(flags: BooleanArray, scored: BooleanArray): Double {
    val hours = scored.count { it } / 60.0
    return if (hours > 0) flags.count { it } / hours else Double.NaN
}

/**
 * The night's severity class from its AHI (`apnea-severity/1`, teacher.SEVERITY in the manifest): normal
 * below `mildAhi`, then mild, moderate from `moderateAhi`, severe from `severeAhi` (AASM: 5, 15, 30).
 */
data class Severity(val mildAhi: Double, val moderateAhi: Double, val severeAhi: Double) {
    fun of(ahi: Double): String? = when {
        ahi.isNaN() -> null
        ahi >= severeAhi -> "severe"
        ahi >= moderateAhi -> "moderate"
        ahi >= mildAhi -> "mild"
        else -> "normal"
    }

    companion object {
        const val NAME = "apnea-severity/1"

        fun fromJson(json: JSONObject): Severity {
            val spec = SpecFields(json, NAME, setOf("mild_ahi", "moderate_ahi", "severe_ahi"), "severity classes")
            return Severity(spec.double("mild_ahi"), spec.double("moderate_ahi"), spec.double("severe_ahi"))
        }
    }
}
