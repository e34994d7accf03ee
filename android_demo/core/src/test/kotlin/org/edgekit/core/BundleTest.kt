package org.edgekit.core

import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.spec.ECGenParameterSpec
import java.util.Base64

/**
 * What the core refuses before anything runs, on copies of the bundle the app ships (app/src/main/assets):
 * signed here by a key made for the test, the way the server signs (ECDSA P-256 over manifest.json).
 */
class BundleTest {
    @TempDir
    lateinit var temporary: File

    private val shipped = File("app/src/main/assets/bundle")
    private val hospital: KeyPair = KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()

    private fun copy(name: String = "bundle"): File = File(temporary, name).also { shipped.copyRecursively(it) }

    private fun sign(bundle: File, keys: KeyPair = hospital) {
        val signer = Signature.getInstance("SHA256withECDSA").apply { initSign(keys.private); update(File(bundle, "manifest.json").readBytes()) }
        File(bundle, "manifest.sig").writeBytes(signer.sign())
    }

    private fun editManifest(bundle: File, edit: (JSONObject) -> Unit) {
        val manifest = JSONObject(File(bundle, "manifest.json").readText())
        edit(manifest.getJSONObject("bundle"))
        File(bundle, "manifest.json").writeText(manifest.toString())
    }

    private fun refused(bundle: File, saying: String) {
        val error = assertThrows<BundleError> { Bundle.load(bundle, hospital.public) }
        assertTrue(error.message!!.contains(saying), "'${error.message}' should say '$saying'")
    }

    @Test
    fun `the shipped bundle loads under the pinned key and names what the core implements`() {
        val pinned = Bundle.publicKey(File("app/src/main/assets/hospital-signing.pub").readText())
        val bundle = Bundle.load(shipped, pinned)
        assertEquals(listOf(1L, 1L, 1200L), bundle.inputShape.toList())
        assertEquals("apnea", bundle.decision.positiveLabel)
        assertEquals(bundle.manifest.getString("id"), bundle.id)
    }

    @Test
    fun `a signed copy loads`() {
        val bundle = copy().also { sign(it) }
        assertEquals(240, Bundle.load(bundle, hospital.public).preprocessing.samplesPerMinute)
    }

    @Test
    fun `an unsigned bundle is refused`() {
        val bundle = copy().also { File(it, "manifest.sig").delete() }
        refused(bundle, "unsigned")
    }

    @Test
    fun `a bundle signed by another key is refused`() {
        val other = KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()
        val bundle = copy().also { sign(it, other) }
        refused(bundle, "signature does not match")
    }

    @Test
    fun `a signature that is not one is refused`() {
        val bundle = copy().also { File(it, "manifest.sig").writeBytes(byteArrayOf(1, 2, 3)) }
        refused(bundle, "signature does not match")
    }

    @Test
    fun `a manifest changed after signing is refused, even with a pte to match`() {
        val bundle = copy().also { sign(it) }
        val pte = File(bundle, "model.pte").readBytes().also { it[it.size / 2] = (it[it.size / 2].toInt() xor 1).toByte() }
        File(bundle, "model.pte").writeBytes(pte)
        editManifest(bundle) { it.put("pte_sha256", Bundle.sha256Hex(pte)) }
        refused(bundle, "signature does not match")
    }

    @Test
    fun `a truncated or altered pte is refused`() {
        val truncated = copy("truncated").also { sign(it) }
        File(truncated, "model.pte").let { it.writeBytes(it.readBytes().copyOf(it.length().toInt() / 2)) }
        refused(truncated, "truncated or changed")
        val altered = copy("altered").also { sign(it) }
        File(altered, "model.pte").let { file -> file.writeBytes(file.readBytes().also { it[100] = (it[100].toInt() xor 1).toByte() }) }
        refused(altered, "sha256")
    }

    @Test
    fun `an unknown preprocessing or decision rule is refused, even signed`() {
        val preprocessing = copy("preprocessing").also { editManifest(it) { spec -> spec.getJSONObject("preprocessing").put("name", "beats-to-rr-windows/2") }; sign(it) }
        refused(preprocessing, "not implemented")
        val decision = copy("decision").also { editManifest(it) { spec -> spec.getJSONObject("decision").put("name", "hmm-decoding/1") }; sign(it) }
        refused(decision, "not implemented")
        val detector = copy("detector").also {
            editManifest(it) { spec -> spec.getJSONObject("preprocessing").getJSONObject("ecg_to_beats").remove("refractory_s") }; sign(it)
        }
        refused(detector, "refractory_s")
    }

    @Test
    fun `a contract the windows do not fit is refused, and so is a window of the wrong shape`() {
        val bundle = copy().also { editManifest(it) { spec -> spec.getJSONObject("contract").put("shape", org.json.JSONArray(listOf(1, 600))) }; sign(it) }
        refused(bundle, "not one window of 1200 samples")
        val loaded = Bundle.load(copy("fine").also { sign(it) }, hospital.public)
        assertTrue(assertThrows<BundleError> { loaded.checkInput(FloatArray(600)) }.message!!.contains("1x1x1200"))
        assertTrue(assertThrows<BundleError> { loaded.checkInput(FloatArray(1200) { Float.NaN }) }.message!!.contains("NaN"))
    }

    @Test
    fun `a key that is not a PEM public key is refused`() {
        assertThrows<BundleError> { Bundle.publicKey("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n") }
        assertThrows<BundleError> { Bundle.publicKey(Base64.getEncoder().encodeToString(hospital.public.encoded)) }
    }
}
