package org.edgekit.core

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory
import org.json.JSONObject

/** smoothed-threshold/1 and the severity classes against `teacher.DecisionRule` and `teacher.SEVERITY`. */
class DecisionTest {
    private val golden = Golden.json("decision.json")
    private val rule = DecisionRule.fromJson(golden.getJSONObject("decision"))
    private val severity = Severity.fromJson(golden.getJSONObject("severity"))

    @TestFactory
    fun `every night gives the server's smoothed probabilities, flags, AHI, call and severity`(): List<DynamicTest> =
        (0 until golden.getJSONArray("cases").length()).map { index ->
            val case = golden.getJSONArray("cases").getJSONObject(index)
            DynamicTest.dynamicTest(case.getString("name")) {
                val probabilities = Golden.doubles(case.getJSONArray("probabilities")).map { it.toFloat() }.toFloatArray()
                val decided = rule.apply(probabilities, Golden.booleans(case.getJSONArray("scored")))
                val smoothed = Golden.doubles(case.getJSONArray("smoothed"))
                for (i in smoothed.indices) assertEquals(smoothed[i].toFloat(), decided.smoothed[i], "minute $i")
                assertArrayEquals(Golden.booleans(case.getJSONArray("flags")), decided.flags)
                if (case.isNull("estimated_ahi")) assertTrue(decided.estimatedAhi.isNaN())
                else assertEquals(case.getDouble("estimated_ahi"), decided.estimatedAhi, 1e-12)
                assertEquals(case.getBoolean("apneic"), decided.apneic)
                assertEquals(if (case.isNull("severity")) null else case.getString("severity"), severity.of(decided.estimatedAhi))
            }
        }

    @Test
    fun `severity classes follow the clinical bands`() {
        assertEquals(listOf("normal", "mild", "mild", "moderate", "severe"), listOf(4.99, 5.0, 14.9, 15.0, 30.0).map { severity.of(it) })
    }

    @Test
    fun `another decision rule, or one with a missing field, is refused`() {
        val other = JSONObject(golden.getJSONObject("decision").toString()).put("name", "hmm-decoding/1")
        assertTrue(assertThrows<BundleError> { DecisionRule.fromJson(other) }.message!!.contains("not implemented"))
        val missing = JSONObject(golden.getJSONObject("decision").toString()).apply { remove("threshold") }
        assertTrue(assertThrows<BundleError> { DecisionRule.fromJson(missing) }.message!!.contains("threshold"))
    }
}
