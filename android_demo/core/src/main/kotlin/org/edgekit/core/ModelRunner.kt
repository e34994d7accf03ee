package org.edgekit.core

/**
 * Runs a bundle's model: one input window in, its logits over the contract's labels out (the core takes
 * the softmax, once, in `probabilities`).
 * The core never touches a runtime: on the phone this wraps `org.pytorch.executorch.Module`, on the host
 * the JNI runner over ExecuTorch's C++ runtime (android_demo/host).
 */
interface ModelRunner : AutoCloseable {
    /** `window` has the contract's shape, flattened (1 x 1200 for the apnea models). */
    fun logits(window: FloatArray): FloatArray

    fun probabilities(window: FloatArray): FloatArray = softmax(logits(window))

    override fun close() {}
}

/** A bundle that must not run (unsigned, altered, another preprocessing...); nothing was run. */
class BundleError(message: String) : Exception(message)

/** An input that cannot be scored (a corrupt file, a wrong rate, too little signal), with the reason. */
class NightError(message: String) : Exception(message)

/** Softmax of logits, in double then rounded to float, as the server's replay does (torch.softmax in float32). */
fun softmax(logits: FloatArray): FloatArray {
    val top = logits.maxOrNull() ?: return logits
    val exps = DoubleArray(logits.size) { Math.exp((logits[it] - top).toDouble()) }
    val total = exps.sum()
    return FloatArray(logits.size) { (exps[it] / total).toFloat() }
}
