package org.edgekit.host

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import org.edgekit.core.BundleError
import org.edgekit.core.ModelRunner

/**
 * A bundle's `.pte` run on the JVM by ExecuTorch's C++ runtime (the one in the locked `executorch`
 * wheel, through build/libedgekit_executorch.so): the host twin of the phone's
 * `org.pytorch.executorch.Module` runner, giving the Python runtime's logits.
 *
 * `inputShape` is the contract's, batch included (1, 1, 1200 for the apnea models); a program taking
 * anything else is a [BundleError]. The runner holds native memory: [close] it.
 */
class ExecuTorchRunner(pte: ByteArray, inputShape: LongArray, where: String = "model.pte") : ModelRunner {
    /** Loads the file's bytes; pass the bytes instead where their sha256 was checked, so what runs is what was checked. */
    constructor(ptePath: Path, inputShape: LongArray) : this(Files.readAllBytes(ptePath), inputShape, ptePath.toString())

    private val shape = inputShape.copyOf()
    private val size = shape.fold(1L) { total, dim -> total * dim }
    private var handle: Long

    init {
        NativeLibrary.ensureLoaded()
        handle = try {
            nativeLoad(pte)
        } catch (error: IllegalStateException) {
            throw BundleError("$where: the ExecuTorch runtime cannot load it (${error.message})")
        }
        val takes = nativeInputShape(handle)
        if (!takes.contentEquals(shape)) {
            close()
            throw BundleError("$where: the model takes input ${shapeText(takes)}, the contract says ${shapeText(shape)}")
        }
    }

    /** The model's output logits for one window of the contract's shape, flattened. */
    @Synchronized
    override fun logits(window: FloatArray): FloatArray {
        check(handle != 0L) { "the ExecuTorch runner is closed" }
        require(window.size.toLong() == size) { "a window of ${window.size} values, the model takes ${shapeText(shape)} = $size" }
        return nativeForward(handle, window, shape)
    }

    @Synchronized
    override fun close() {
        nativeClose(handle)
        handle = 0L
    }

    private external fun nativeLoad(pte: ByteArray): Long

    private external fun nativeInputShape(handle: Long): LongArray

    private external fun nativeForward(handle: Long, window: FloatArray, shape: LongArray): FloatArray

    private external fun nativeClose(handle: Long)

    private fun shapeText(dims: LongArray) = dims.joinToString(", ", "(", ")")

    /** The JNI library, found once: the `edgekit.jni` system property (the .so or its folder), else next to the host jar. */
    internal object NativeLibrary {
        const val FILE_NAME = "libedgekit_executorch.so"

        private val loaded: Result<Unit> by lazy { runCatching { System.load(locate().toString()) } }

        fun ensureLoaded() {
            loaded.getOrElse { throw IllegalStateException("cannot load the ExecuTorch JNI library: ${it.message}", it) }
        }

        private fun locate(): Path {
            val configured = System.getProperty("edgekit.jni")
            val candidate = if (configured != null) {
                Paths.get(configured).let { if (Files.isDirectory(it)) it.resolve(FILE_NAME) else it }
            } else {
                val jar = Paths.get(ExecuTorchRunner::class.java.protectionDomain.codeSource.location.toURI())
                (if (Files.isDirectory(jar)) jar else jar.parent).resolve(FILE_NAME)
            }
            check(Files.isRegularFile(candidate)) {
                "$candidate not found (build it: make -C android_demo host, or point -Dedgekit.jni at it)"
            }
            return candidate.toAbsolutePath()
        }
    }
}
