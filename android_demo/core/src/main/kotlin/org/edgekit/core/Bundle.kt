package org.edgekit.core

import org.json.JSONException
import org.json.JSONObject
import java.io.File
import java.security.KeyFactory
import java.security.MessageDigest
import java.security.PublicKey
import java.security.Signature
import java.security.spec.X509EncodedKeySpec
import java.util.Base64

/**
 * A bundle the core will run (`edgekit-bundle/1`: model.pte, manifest.json, manifest.sig), verified before
 * anything in it is used: signed by the pinned key (ECDSA P-256 over the manifest's bytes, which hold the
 * .pte's sha256), the .pte whole, and every rule it names one this core implements, with all its constants.
 */
class Bundle private constructor(
    val directory: File,
    val manifest: JSONObject,
    val pte: File,
    /** The .pte's bytes as verified: run these, so what runs is what was checked. */
    val pteBytes: ByteArray,
    val inputShape: LongArray,
    val labels: List<String>,
    val preprocessing: RrPreprocessing,
    val decision: DecisionRule,
    val severity: Severity,
) {
    val id: String get() = manifest.getString("id")

    /** One window as the model takes it, or BundleError saying what is wrong with it. */
    fun checkInput(window: FloatArray) {
        val expected = inputShape.fold(1L) { size, dimension -> size * dimension }
        if (window.size.toLong() != expected) {
            throw BundleError("input of ${window.size} values: the bundle takes ${inputShape.joinToString("x")}")
        }
        val bad = window.count { !it.isFinite() }
        if (bad > 0) throw BundleError("input has $bad NaN or infinite values")
    }

    companion object {
        const val FORMAT = "edgekit-bundle/1"
        const val MANIFEST = "manifest.json"
        const val SIGNATURE = "manifest.sig"
        const val SIGNATURE_ALGORITHM = "SHA256withECDSA"

        /** Verify and read a bundle directory; BundleError (nothing run) for anything the core must not run. */
        fun load(directory: File, trustedKey: PublicKey): Bundle {
            val manifestFile = File(directory, MANIFEST)
            val signatureFile = File(directory, SIGNATURE)
            if (!manifestFile.exists()) throw BundleError("$directory: not a bundle (no $MANIFEST)")
            if (!signatureFile.exists()) throw BundleError("$directory: unsigned (no $SIGNATURE): only bundles the hospital signed run")
            val manifestBytes = manifestFile.readBytes()
            val verifier = Signature.getInstance(SIGNATURE_ALGORITHM).apply { initVerify(trustedKey); update(manifestBytes) }
            val signed = try {
                verifier.verify(signatureFile.readBytes())
            } catch (error: java.security.SignatureException) {
                false  // not even a well-formed signature
            }
            if (!signed) throw BundleError("$directory: the signature does not match: the manifest was changed after signing, or another key signed it")

            val manifest = try {
                JSONObject(String(manifestBytes, Charsets.UTF_8))
            } catch (error: JSONException) {
                throw BundleError("$manifestFile: not valid JSON (${error.message})")
            }
            val spec = manifest.optJSONObject("bundle")
            if (manifest.optString("kind") != "bundle" || spec == null || spec.optString("format") != FORMAT) {
                throw BundleError("$manifestFile: not a $FORMAT manifest")
            }
            return try {
                read(directory, manifest, spec)
            } catch (error: JSONException) {
                throw BundleError("$manifestFile: ${error.message}")
            }
        }

        private fun read(directory: File, manifest: JSONObject, spec: JSONObject): Bundle {
            val pte = File(directory, spec.getString("pte"))
            if (!pte.exists()) throw BundleError("$directory: not a bundle (no ${pte.name})")
            val pteBytes = pte.readBytes()
            val digest = sha256Hex(pteBytes)
            val expected = spec.getString("pte_sha256")
            if (digest != expected) {
                throw BundleError("$pte: sha256 ${digest.take(12)}... does not match the manifest's ${expected.take(12)}... " +
                    "(${pte.length()} bytes): the file was truncated or changed")
            }
            val contract = spec.getJSONObject("contract")
            if (contract.getString("modality") != "rr-series") {
                throw BundleError("$directory: this core runs apnea (rr-series) bundles, not ${contract.getString("modality")}")
            }
            if (contract.getString("dtype") != "float32") throw BundleError("$directory: inputs of ${contract.getString("dtype")}, the core feeds float32")
            val shape = contract.getJSONArray("shape").longs()
            val labels = contract.getJSONArray("labels").strings()
            val preprocessing = RrPreprocessing.fromJson(spec.getJSONObject("preprocessing"))
            if (shape.size != 2 || shape[0] != 1L || shape[1] != preprocessing.windowSamples.toLong()) {
                throw BundleError("$directory: the contract's input ${shape.joinToString("x")} is not one window of " +
                    "${preprocessing.windowSamples} samples")
            }
            val decision = DecisionRule.fromJson(spec.getJSONObject("decision"))
            if (decision.positiveLabel != labels.last()) {
                throw BundleError("$directory: the decision rule flags '${decision.positiveLabel}', the model's last label is '${labels.last()}'")
            }
            val severity = Severity.fromJson(spec.getJSONObject("severity"))
            return Bundle(directory, manifest, pte, pteBytes, longArrayOf(1, *shape), labels, preprocessing, decision, severity)
        }

        /** A pinned public key from its PEM text (SubjectPublicKeyInfo, as `edgekit keys new` writes it). */
        fun publicKey(pem: String): PublicKey {
            val body = pem.lines().filter { it.isNotBlank() && !it.startsWith("-----") }.joinToString("")
            if (!pem.contains("BEGIN PUBLIC KEY")) throw BundleError("not a PEM public key")
            return try {
                KeyFactory.getInstance("EC").generatePublic(X509EncodedKeySpec(Base64.getDecoder().decode(body)))
            } catch (error: Exception) {
                throw BundleError("not an elliptic-curve public key (${error.message})")
            }
        }

        fun sha256Hex(data: ByteArray): String =
            MessageDigest.getInstance("SHA-256").digest(data).joinToString("") { "%02x".format(it) }
    }
}
