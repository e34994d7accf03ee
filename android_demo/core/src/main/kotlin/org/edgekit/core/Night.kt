package org.edgekit.core

import java.io.File
import kotlin.math.ceil

/**
 * One night as the core scores it, whatever it came from: a record's annotated beats, an ECG's detected
 * beats, or a strap's RR intervals (`teacher.Night`). Minute m covers [60 m, 60 (m + 1)) s.
 *
 * @property samples the recording's length in samples at `fs` (for a strap: ms at 1000 Hz).
 * @property labels per-minute reference (1 = apnea) where the night has them.
 * @property quality the ECG's signal-quality marks where an ECG was read.
 * @property rejectedBeats beats dropped for lying in unusable ECG, per reason (detected beats only).
 */
class Night(
    val name: String,
    val fs: Double,
    val samples: Long,
    val beatTimes: DoubleArray,
    val labels: IntArray?,
    val beatSource: String,
    val quality: SignalQuality? = null,
    val rejectedBeats: Map<String, Int> = emptyMap(),
) {
    /** One per label, else every started minute of the recording. */
    val minutes: Int get() = labels?.size ?: ceil(samples / fs / 60.0).toInt()

    companion object {
        const val ANSWERS_FILE = "event-2-answers"

        /**
         * A night of an Apnea-ECG-style record in `folder` (`teacher.read_night`): its `.qrs` beats (noise
         * marks `|` dropped) or, without them or with `detect`, the detector's beats on its `.dat`; the ECG's
         * quality marks where the `.dat` is there; labels from `.apn`, else the folder's answers file.
         */
        fun fromRecord(name: String, folder: File, preprocessing: RrPreprocessing, detect: Boolean = false): Night {
            val header = Wfdb.readHeader(File(folder, name))
            val samples = header.nSamples ?: throw NightError("${header.file}: the header gives no signal length")
            val dat = File(folder, "$name.dat")
            val qrs = File(folder, "$name.qrs")
            val ecg = if (dat.exists()) Wfdb.readEcg(File(folder, name)) else null
            if (ecg == null && detect) throw NightError("$name: signal file $dat is missing (only annotations are here)")
            if (ecg != null && ecg.samples.size < samples) {
                throw NightError("$name: $dat has ${ecg.samples.size} samples, header says $samples")
            }
            val beats: LongArray
            val source: String
            var quality: SignalQuality? = null
            var rejected = emptyMap<String, Int>()
            if (qrs.exists() && !detect) {
                val annotations = Wfdb.readAnnotations(qrs)
                beats = annotations.samples.filterIndexed { i, _ -> annotations.symbols[i] != "|" }.toLongArray()
                source = qrs.path
                if (ecg != null) quality = assessEcg(ecg.samples, header.fs, preprocessing.quality)
            } else if (ecg != null) {
                val detected = detectedBeats(name, dat, ecg.samples, header.fs, preprocessing)
                beats = detected.beats
                quality = detected.quality
                rejected = detected.rejected
                source = "${dat.path} (beats detected, ${ECG_TO_BEATS})"
            } else {
                throw NightError("$name: no beats: neither $qrs nor $dat exists")
            }
            if (beats.isNotEmpty() && beats.max() > samples + header.fs) {
                throw NightError("$name: $qrs has beats after the end of the recording (${beats.max()} > $samples samples): " +
                    "annotation and header disagree")
            }
            return Night(name, header.fs, samples, DoubleArray(beats.size) { beats[it] / header.fs }, labels(name, folder),
                source, quality, rejected)
        }

        /**
         * A night from an ECG (`teacher.read_ecg`): a WFDB record (`file` or `file.hea`), or a CSV / text
         * file of samples in mV at `fs` Hz; beats from the detector, as on a phone with an ECG patch.
         */
        fun fromEcg(file: File, fs: Double?, preprocessing: RrPreprocessing): Night {
            val record = if (file.extension == "hea" || file.extension == "dat") File(file.parentFile, file.nameWithoutExtension) else file
            if (File(record.path + ".hea").exists()) {
                val night = fromRecord(record.name, record.absoluteFile.parentFile, preprocessing, detect = true)
                if (fs != null && Math.abs(fs - night.fs) > 1e-8 + 1e-5 * night.fs) {
                    throw NightError("$record: the header says ${night.fs} Hz, --fs says $fs Hz")
                }
                return night
            }
            if (!file.exists()) throw NightError("$file: no such ECG file (a WFDB record needs its .hea; a CSV its samples)")
            if (fs == null) throw NightError("$file: a CSV of samples carries no sampling rate; give it (--fs)")
            val values = readColumn(file, "ECG samples (mV)", finite = false)
            val signal = FloatArray(values.size) { values[it].toFloat() }
            val detected = detectedBeats(file.nameWithoutExtension, file, signal, fs, preprocessing)
            return Night(file.nameWithoutExtension, fs, signal.size.toLong(),
                DoubleArray(detected.beats.size) { detected.beats[it] / fs }, null,
                "$file (beats detected, ${ECG_TO_BEATS})", detected.quality, detected.rejected)
        }

        private fun detectedBeats(name: String, file: File, signal: FloatArray, fs: Double, preprocessing: RrPreprocessing): EcgBeats =
            try {
                ecgBeats(signal, fs, preprocessing.detector, preprocessing.quality)
            } catch (error: NightError) {
                throw NightError("$name: $file: ${error.message}")
            }

        /** Per-minute labels: the record's `.apn`, else its line in the folder's answers file, else none. */
        private fun labels(name: String, folder: File): IntArray? {
            val apn = File(folder, "$name.apn")
            if (apn.exists()) {
                val symbols = Wfdb.readAnnotations(apn).symbols
                val unknown = symbols.toSet() - setOf("A", "N")
                if (unknown.isNotEmpty()) throw NightError("$name: $apn has labels ${unknown.sorted()}, expected A or N")
                return IntArray(symbols.size) { if (symbols[it] == "A") 1 else 0 }
            }
            val answers = File(folder, ANSWERS_FILE)
            return if (answers.exists()) parseAnswers(answers.readText())[name] else null
        }

        /**
         * A strap's beats (`teacher.read_rr`): RR intervals in ms or beat times in s, one per line; a first
         * line `rr_ms` or `time_s` says which, else increasing values with steps under 3 are beat times and
         * values with a median of 200-3000 are RR intervals in ms.
         */
        fun fromRrFile(file: File): Night {
            if (!file.exists()) throw NightError("$file: no such RR file")
            val header = file.readText().trimStart().substringBefore("\n").trim().lowercase()
            val values = readColumn(file, "RR intervals (ms) or beat times (s)")
            val steps = DoubleArray(maxOf(0, values.size - 1)) { values[it + 1] - values[it] }
            val kind = when {
                header == "rr_ms" || header == "time_s" -> header
                values.size > 1 && steps.all { it > 0 } && median(steps) < 3.0 -> "time_s"
                values.isNotEmpty() && median(values) in 200.0..3000.0 -> "rr_ms"
                else -> throw NightError("$file: ${values.size} values (median ${"%.6g".format(if (values.isEmpty()) 0.0 else median(values)).trimEnd('0').trimEnd('.')}) " +
                    "are neither RR intervals in ms nor increasing beat times in s; name the column rr_ms or time_s")
            }
            val beatTimes = if (kind == "rr_ms") {
                if (values.any { it <= 0 }) throw NightError("$file: RR intervals must be positive ms")
                var sum = 0.0
                DoubleArray(values.size) { sum += values[it] / 1000.0; sum }
            } else {
                if (steps.any { it <= 0 }) throw NightError("$file: beat times must increase")
                values
            }
            val source = "$file (${if (kind == "rr_ms") "RR intervals, ms" else "beat times, s"})"
            return Night(file.nameWithoutExtension, 1000.0, ceil(beatTimes.last() * 1000.0).toLong(), beatTimes, null, source)
        }

        /**
         * One number a line (a first header line allowed, a CSV's first column), refused whole on any bad
         * line (`teacher._read_column`); NaN or infinite values only where `finite` is false (an ECG's gaps).
         */
        fun readColumn(file: File, what: String, finite: Boolean = true): DoubleArray {
            val lines = file.readLines().map { it.trim() }.filter { it.isNotEmpty() }.map { it.substringBefore(",").trim() }
            val body = if (lines.isNotEmpty() && parseNumber(lines[0]) == null) lines.drop(1) else lines
            val bad = body.indexOfFirst { parseNumber(it) == null }
            if (bad >= 0) throw NightError("$file: line ${bad + 1} is not a number ($what); ${body.count { parseNumber(it) == null }} bad lines")
            val values = DoubleArray(body.size) { parseNumber(body[it])!! }
            if (values.isEmpty()) throw NightError("$file: no $what")
            if (finite && values.any { !it.isFinite() }) throw NightError("$file: NaN or infinite $what")
            return values
        }

        /** A number as Python's float() reads it (nan, inf, infinity in any case), else null. */
        private fun parseNumber(text: String): Double? {
            val word = text.lowercase().removePrefix("+")
            return when (word) {
                "nan", "-nan" -> Double.NaN
                "inf", "infinity" -> Double.POSITIVE_INFINITY
                "-inf", "-infinity" -> Double.NEGATIVE_INFINITY
                else -> if (word.any { it.isLetter() && it != 'e' }) null else text.toDoubleOrNull()
            }
        }

        /** The Challenge's answers file (`event-2-answers`): a record line, then `hour AANN...` lines. */
        fun parseAnswers(text: String): Map<String, IntArray> {
            val labels = LinkedHashMap<String, StringBuilder>()
            var current: String? = null
            for ((number, line) in text.lines().withIndex()) {
                val stripped = line.trim()
                if (stripped.isEmpty()) continue
                if (Regex("[a-z]\\d\\d").matches(stripped)) {
                    current = stripped
                    labels[stripped] = StringBuilder()
                    continue
                }
                val match = Regex("(\\d+)\\s+([AN]+)").matchEntire(stripped)
                if (current == null || match == null) throw NightError("event-2-answers: line ${number + 1} is not '<hour> <A|N...>'")
                labels.getValue(current).append(match.groupValues[2])
            }
            return labels.mapValues { (_, symbols) -> IntArray(symbols.length) { if (symbols[it] == 'A') 1 else 0 } }
        }
    }
}
