package org.edgekit.core

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.TestFactory

/** A strap's files read as `teacher.read_rr` reads them: the same beat times, or a refusal. */
class RrFileTest {
    private val golden = Golden.json("rr_files.json")

    @TestFactory
    fun `every file gives the server's beat times or its refusal`(): List<DynamicTest> =
        (0 until golden.getJSONArray("cases").length()).map { index ->
            val case = golden.getJSONArray("cases").getJSONObject(index)
            DynamicTest.dynamicTest(case.getString("file")) {
                val file = Golden.file("rr_files/${case.getString("file")}")
                if (case.has("error")) {
                    val error = assertThrows<NightError> { Night.fromRrFile(file) }
                    val expected = case.getString("error").substringAfter(": ").take(20)
                    assertTrue(error.message!!.contains(expected), "'${error.message}' should say '$expected'")
                    return@dynamicTest
                }
                val night = Night.fromRrFile(file)
                val expected = Golden.doubles(case.getJSONArray("beat_times"))
                assertEquals(expected.size, night.beatTimes.size)
                for (i in expected.indices) assertEquals(expected[i], night.beatTimes[i], 1e-12, "beat $i")
                assertEquals(case.getLong("samples"), night.samples)
            }
        }
}
