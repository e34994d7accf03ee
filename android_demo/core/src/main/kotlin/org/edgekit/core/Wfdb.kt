package org.edgekit.core

import java.io.File

/**
 * The little of PhysioNet's WFDB format the kit reads (Apnea-ECG and MIT-BIH records): a header, channel 0
 * of a format-16 or format-212 signal file in physical units exactly as `wfdb.rdrecord` gives it (then
 * float32, as the kit keeps it), and MIT annotation files (.qrs, .atr, .apn) as `wfdb.rdann` reads them.
 * Anything else is refused with a [NightError] naming the file.
 */
object Wfdb {
    /** One signal line of a header. `baseline` is the ADC zero where the header gives none, as in wfdb. */
    data class Signal(
        val fileName: String,
        val format: Int,
        val byteOffset: Long,
        val gain: Double,
        val baseline: Int,
        val units: String,
        val description: String,
    )

    class Header(val file: File, val recordName: String, val fs: Double, val nSamples: Long?, val signals: List<Signal>)

    /** Channel 0 of a record: samples in `units` (mV for the kit), NaN where the file marks a gap. */
    class Ecg(val name: String, val fs: Double, val samples: FloatArray, val units: String)

    /** Annotations in file order: sample index, symbol (WFDB's mnemonic) and auxiliary note ("" without one). */
    class Annotations(val samples: LongArray, val symbols: List<String>, val auxNotes: List<String>)

    /** The header of a record: `record` is the record's path, with or without ".hea". */
    fun readHeader(record: File): Header {
        val file = headerFile(record)
        if (!file.isFile) throw NightError("$file: no such WFDB header")
        val lines = file.readLines(Charsets.ISO_8859_1).map { it.trim() }.filter { it.isNotEmpty() && !it.startsWith("#") }
        if (lines.isEmpty()) throw NightError("$file: an empty WFDB header")
        val fields = lines[0].split(Regex("\\s+"))
        if (fields.size < 2) throw NightError("$file: record line '${lines[0]}' has no signal count")
        if ('/' in fields[0]) throw NightError("$file: a multi-segment record, which the kit does not read")
        val nSignals = fields[1].toIntOrNull() ?: throw NightError("$file: record line '${lines[0]}': bad signal count")
        val fs = if (fields.size > 2) {
            Regex("^\\d*\\.?\\d*").find(fields[2])!!.value.toDoubleOrNull()
                ?: throw NightError("$file: sampling rate '${fields[2]}' is not a number")
        } else 250.0 // WFDB's default
        if (!(fs > 0) || fs.isInfinite()) throw NightError("$file: sampling rate $fs Hz: a record needs a positive rate")
        val nSamples = if (fields.size > 3) {
            fields[3].toLongOrNull() ?: throw NightError("$file: sample count '${fields[3]}' is not a number")
        } else null
        if (lines.size < 1 + nSignals) throw NightError("$file: header says $nSignals signals, has ${lines.size - 1} signal lines")
        val signals = (1..nSignals).map { signalLine(file, lines[it]) }
        return Header(file, fields[0], fs, nSamples, signals)
    }

    /**
     * Channel 0 of a record as float32 mV: wfdb's `(adu - baseline) / gain` in double, then rounded to
     * float. Refused: a missing or truncated file, another format, a record not in mV.
     */
    fun readEcg(record: File): Ecg {
        val header = readHeader(record)
        val signal = header.signals.firstOrNull() ?: throw NightError("${header.file}: the record has no signal")
        if (signal.units.lowercase() !in listOf("mv", "millivolts")) {
            throw NightError("${header.file}: the signal is in '${signal.units}'; the kit reads ECG in mV")
        }
        // The signals sharing channel 0's file are interleaved frame by frame.
        val inFile = header.signals.filter { it.fileName == signal.fileName }
        if (inFile.any { it.format != signal.format }) throw NightError("${header.file}: signals of mixed formats in one file")
        val dat = File(header.file.parentFile, signal.fileName)
        if (!dat.isFile) throw NightError("$dat: no such signal file")
        val bytes = dat.readBytes()
        val available = maxOf(0L, bytes.size - signal.byteOffset)
        val frames = when (signal.format) {
            16 -> available / (2 * inFile.size)
            212 -> available * 2 / 3 / inFile.size
            else -> throw NightError("$dat: signal format ${signal.format}; the kit reads formats 16 and 212")
        }
        val n = header.nSamples ?: frames
        if (frames < n) throw NightError("$dat: truncated: has $frames samples, the header says $n")
        if (n > Int.MAX_VALUE) throw NightError("$dat: $n samples, more than one recording can hold")
        val offset = signal.byteOffset.toInt()
        val stride = inFile.size
        val samples = FloatArray(n.toInt()) { i ->
            val k = i.toLong() * stride // channel 0 is the first of its file
            val adu = when (signal.format) {
                16 -> {
                    val at = offset + 2 * k.toInt()
                    ((bytes[at].toInt() and 0xff) or (bytes[at + 1].toInt() shl 8)).toShort().toInt()
                }
                else -> {
                    val at = offset + 3 * (k / 2).toInt()
                    val middle = bytes[at + 1].toInt() and 0xff
                    val twelveBits = if (k % 2 == 0L) (bytes[at].toInt() and 0xff) or ((middle and 0x0f) shl 8)
                    else (bytes[at + 2].toInt() and 0xff) or ((middle and 0xf0) shl 4)
                    if (twelveBits > 2047) twelveBits - 4096 else twelveBits
                }
            }
            val invalid = if (signal.format == 16) -32768 else -2048 // WFDB's "no sample here"
            if (adu == invalid) Float.NaN else ((adu.toDouble() - signal.baseline) / signal.gain).toFloat()
        }
        return Ecg(header.recordName, header.fs, samples, signal.units)
    }

    /**
     * An MIT-format annotation file: 16-bit little-endian words, the code in the top 6 bits and the time
     * since the previous annotation in the low 10; SKIP (59) carries a 32-bit interval, NUM/SUB/CHN (60-62)
     * modify the annotation before them, AUX (63) carries a note padded to an even length. As in
     * `wfdb.rdann`, code 0 (not an annotation) and notes at sample 0 (definitions) are left out.
     */
    fun readAnnotations(file: File): Annotations {
        if (!file.isFile) throw NightError("$file: no such annotation file")
        val bytes = file.readBytes()
        if (bytes.size % 2 != 0) throw NightError("$file: truncated annotation file (an odd number of bytes)")
        val words = bytes.size / 2
        fun word(i: Int): Int {
            if (i >= words) throw NightError("$file: truncated annotation file (ends inside an annotation)")
            return (bytes[2 * i].toInt() and 0xff) or ((bytes[2 * i + 1].toInt() and 0xff) shl 8)
        }
        val samples = mutableListOf<Long>()
        val codes = mutableListOf<Int>()
        val notes = mutableListOf<String>()
        var time = 0L
        var i = 0
        while (i < words) {
            val w = word(i)
            val code = w ushr 10
            val low = w and 0x3ff
            when (code) {
                0 -> {
                    if (low == 0) break // the end of the file
                    time += low
                    i += 1
                }
                SKIP -> {
                    time += (word(i + 1).toLong() shl 16 or word(i + 2).toLong()).toInt().toLong()
                    i += 3
                }
                NUM, SUB, CHN -> i += 1
                AUX -> {
                    val length = low and 0xff
                    val padded = (length + 1) / 2
                    word(i + padded) // the note must be all there
                    val note = String(bytes, 2 * (i + 1), length, Charsets.ISO_8859_1)
                    if (notes.isNotEmpty() && notes.last().isEmpty()) notes[notes.size - 1] = note
                    i += 1 + padded
                }
                else -> {
                    time += low
                    samples.add(time)
                    codes.add(code)
                    notes.add("")
                    i += 1
                }
            }
        }
        val kept = samples.indices.filter { !(samples[it] == 0L && codes[it] == NOTE) }
        return Annotations(
            LongArray(kept.size) { samples[kept[it]] },
            kept.map { symbol(codes[it]) },
            kept.map { notes[it] },
        )
    }

    /** WFDB's mnemonic for an annotation code ("[15]" for a code WFDB leaves unnamed). */
    fun symbol(code: Int): String = SYMBOLS.getOrNull(code)?.takeIf { it.isNotEmpty() } ?: "[$code]"

    private const val NOTE = 22
    private const val SKIP = 59
    private const val NUM = 60
    private const val SUB = 61
    private const val CHN = 62
    private const val AUX = 63

    /** Codes 0-41 (wfdb's `ann_label_table`); 0, 15 and 17 have no mnemonic. */
    private val SYMBOLS = listOf(
        "", "N", "L", "R", "a", "V", "F", "J", "A", "S", "E", "j", "/", "Q", "~", "", "|", "", "s", "T", "*",
        "D", "\"", "=", "p", "B", "^", "t", "+", "u", "?", "!", "[", "]", "e", "n", "@", "x", "f", "(", ")", "r",
    )

    private val FORMAT = Regex("""^(\d+)(?:x(\d+))?(?::(\d+))?(?:\+(\d+))?$""")
    private val GAIN = Regex("""^(-?\d*\.?\d*(?:[eE][+-]?\d+)?)(?:\((-?\d+)\))?(?:/(\S*))?$""")

    private fun headerFile(record: File): File =
        if (record.name.endsWith(".hea")) record else File(record.parentFile, record.name.removeSuffix(".dat") + ".hea")

    /** `file format[xframes][:skew][+offset] [gain[(baseline)][/units] [adcres [adczero [init [checksum [block [description]]]]]]]` */
    private fun signalLine(file: File, line: String): Signal {
        val fields = line.split(Regex("\\s+"), limit = 9)
        if (fields.size < 2) throw NightError("$file: signal line '$line' has no format")
        val format = FORMAT.find(fields[1]) ?: throw NightError("$file: signal format '${fields[1]}' is not a WFDB format")
        val (fmt, perFrame, skew, offset) = format.destructured
        if (perFrame.isNotEmpty() && perFrame != "1") throw NightError("$file: $perFrame samples per frame; the kit reads 1")
        if (skew.isNotEmpty() && skew != "0") throw NightError("$file: a skewed signal, which the kit does not read")
        val adcZero = fields.getOrNull(4)?.toIntOrNull() ?: 0
        var gain = 200.0
        var baseline = adcZero
        var units = "mV"
        if (fields.size > 2) {
            val spec = GAIN.find(fields[2]) ?: throw NightError("$file: gain '${fields[2]}' is not a WFDB gain")
            val (gainText, baselineText, unitsText) = spec.destructured
            if (gainText.isNotEmpty()) {
                gain = gainText.toDoubleOrNull() ?: throw NightError("$file: gain '${fields[2]}' is not a number")
                if (gain == 0.0) gain = 200.0 // WFDB: a gain of 0 means uncalibrated, read at 200
            }
            if (baselineText.isNotEmpty()) baseline = baselineText.toInt()
            if (unitsText.isNotEmpty()) units = unitsText
        }
        return Signal(fields[0], fmt.toInt(), offset.toLongOrNull() ?: 0L, gain, baseline, units, fields.getOrElse(8) { "" })
    }
}
