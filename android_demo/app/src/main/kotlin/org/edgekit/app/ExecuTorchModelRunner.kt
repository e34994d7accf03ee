package org.edgekit.app

import org.edgekit.core.Bundle
import org.edgekit.core.BundleError
import org.edgekit.core.ModelRunner
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import java.io.File

/**
 * A verified bundle's model run by ExecuTorch's Android runtime (`org.pytorch.executorch.Module`, from
 * `org.pytorch:executorch-android`): the phone twin of android_demo/host's JNI runner. One window in
 * (the contract's shape, batch included: 1 x 1 x 1200), the model's logits out; the core takes the softmax.
 *
 * Not thread-safe beyond what Module guarantees: the app calls it from one worker thread. [close] it.
 */
class ExecuTorchModelRunner private constructor(
    private val module: Module,
    private val pte: File,
    inputShape: LongArray,
    private val outputs: Int,
) : ModelRunner {
    private val shape = inputShape.copyOf()
    private val size = shape.fold(1L) { total, dimension -> total * dimension }

    override fun logits(window: FloatArray): FloatArray {
        require(window.size.toLong() == size) { "a window of ${window.size} values, the model takes ${shape.joinToString("x")}" }
        val result = module.forward(EValue.from(Tensor.fromBlob(window, shape)))
        val first = result.firstOrNull() ?: throw IllegalStateException("the model returned no output")
        check(first.isTensor) { "the model's output is not a tensor" }
        val logits = first.toTensor().dataAsFloatArray
        if (logits.size != outputs) throw BundleError("the model gives ${logits.size} outputs, its contract has $outputs labels")
        return logits
    }

    override fun close() {
        module.destroy()
        pte.delete()
    }

    companion object {
        /**
         * Loads `bundle`'s model: the bytes that [Bundle.load] checked (sha256 against the signed manifest),
         * written to a file of the app's own (Module.load takes a path), so what runs is what was checked.
         * BundleError, with the runtime's reason, when ExecuTorch cannot load it or its `forward`.
         */
        fun load(bundle: Bundle, workDir: File, numThreads: Int = 0): ExecuTorchModelRunner {
            workDir.mkdirs()
            val pte = File(workDir, "verified-${Bundle.sha256Hex(bundle.pteBytes).take(16)}.pte")
            pte.writeBytes(bundle.pteBytes)
            val module = try {
                Module.load(pte.absolutePath, Module.LOAD_MODE_FILE, numThreads)
            } catch (error: RuntimeException) {
                pte.delete()
                throw BundleError("${bundle.pte.name}: the ExecuTorch runtime cannot load it (${error.message})")
            }
            try {
                module.loadMethod("forward")
            } catch (error: RuntimeException) {
                module.destroy()
                pte.delete()
                throw BundleError("${bundle.pte.name}: the ExecuTorch runtime cannot load its forward method (${error.message})")
            }
            return ExecuTorchModelRunner(module, pte, bundle.inputShape, bundle.labels.size)
        }
    }
}
