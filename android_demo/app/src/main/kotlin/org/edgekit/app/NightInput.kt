package org.edgekit.app

import org.edgekit.core.Bundle
import org.edgekit.core.Night
import org.edgekit.core.NightError
import java.io.File

/**
 * A night the clinician picked, once its files are copied into the app's storage (no android.* here:
 * this compiles and runs on the JVM against the core). [read] builds the core's [Night], or NightError.
 */
sealed class NightInput {
    abstract fun read(bundle: Bundle): Night

    /** A chest strap's file: RR intervals in ms or beat times in s, one a line. */
    class RrFile(val file: File) : NightInput() {
        override fun read(bundle: Bundle): Night = Night.fromRrFile(file)
    }

    /** An ECG as a CSV / text file of samples in mV, at the rate the clinician typed. */
    class EcgCsv(val file: File, val samplingRate: String) : NightInput() {
        override fun read(bundle: Bundle): Night = Night.fromEcg(file, parseSamplingRate(samplingRate), bundle.preprocessing)
    }

    /** One WFDB record's files (.hea and .dat, with .qrs and .apn where there), all in `folder`. */
    class Record(val folder: File) : NightInput() {
        override fun read(bundle: Bundle): Night = Night.fromRecord(recordName(folder), folder, bundle.preprocessing)
    }

    companion object {
        /** The sampling rate typed for a CSV, in Hz, or NightError saying what is wrong with it. */
        fun parseSamplingRate(text: String): Double {
            val trimmed = text.trim()
            if (trimmed.isEmpty()) throw NightError("a CSV of ECG samples carries no sampling rate: enter it (Hz) before opening the file")
            val fs = trimmed.replace(',', '.').toDoubleOrNull()
                ?: throw NightError("sampling rate '$trimmed' is not a number (Hz)")
            if (!(fs > 0) || fs.isInfinite()) throw NightError("sampling rate $fs Hz: an ECG needs a positive rate")
            return fs
        }

        /** The one record whose header is in `folder`, or NightError when there is none or more than one. */
        fun recordName(folder: File): String {
            val headers = folder.listFiles { file -> file.isFile && file.name.endsWith(".hea") }.orEmpty()
            return when (headers.size) {
                1 -> headers[0].name.removeSuffix(".hea")
                0 -> throw NightError("no WFDB header among the files picked: pick the record's .hea and .dat (and its .qrs, .apn) together")
                else -> throw NightError("${headers.size} records picked (${headers.map { it.name }.sorted().joinToString()}): pick one record's files")
            }
        }

        /**
         * The name a picked file is stored under: its own name (a WFDB header names its .dat by it), less
         * anything that would leave the folder.
         */
        fun safeFileName(displayName: String?, fallback: String): String {
            val name = displayName?.substringAfterLast('/')?.replace('\u0000', '_')?.trim().orEmpty()
            return if (name.isEmpty() || name == "." || name == "..") fallback else name
        }
    }
}
