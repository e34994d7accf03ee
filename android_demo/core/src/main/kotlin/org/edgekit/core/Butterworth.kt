package org.edgekit.core

import kotlin.math.abs
import kotlin.math.cos
import kotlin.math.exp
import kotlin.math.sin
import kotlin.math.sqrt
import kotlin.math.tan

/**
 * The Butterworth band-pass of `scipy.signal.butter(order, (lowHz, highHz), btype="bandpass", fs=fs,
 * output="sos")`, designed here for any rate rather than shipped as a table: buttap -> lp2bp_zpk ->
 * bilinear_zpk -> zpk2sos ("nearest" pairing). Each step does numpy's arithmetic in numpy's order
 * (Smith's complex division, the fused complex square of numpy's AVX-512 loop, unfused products in
 * `np.prod` and `np.poly`), so the sections are scipy's to the last bit at the usual rates (100, 128, 200,
 * 250, 256, 360, 500, 512, 1000 Hz; 880 of the integer rates 100-1000 Hz) and within 1e-15 at the others,
 * where Java's `tan` or `hypot` rounds the last bit differently from numpy's. Rows are
 * (b0, b1, b2, 1, a1, a2), the first one carrying the gain.
 */
fun butterBandpassSos(order: Int, lowHz: Double, highHz: Double, fs: Double): Array<DoubleArray> {
    require(order >= 1) { "a Butterworth band-pass needs an order of at least 1, not $order" }
    require(fs > 0 && lowHz > 0 && lowHz < highHz && highHz < fs / 2) {
        "the band-pass $lowHz-$highHz Hz must lie inside 0-${fs / 2} Hz (the Nyquist rate at $fs Hz)"
    }
    // Pre-warped edges, on scipy's normalised scale (fs = 2).
    val warped = doubleArrayOf(lowHz, highHz).map { 2 * 2.0 * tan(Math.PI * (it / (fs / 2)) / 2.0) }
    val bandwidth = warped[1] - warped[0]
    val centre = sqrt(warped[0] * warped[1])

    // buttap: poles on the left unit half-circle (the middle one exactly real).
    val prototype = (-order + 1 until order step 2).map { m ->
        val angle = Complex(0.0 * m - Math.PI * 0.0, 0.0 * 0.0 + Math.PI * m) / Complex(2.0 * order, 0.0)
        val e = exp(angle.re)
        Complex(-(e * cos(angle.im)), -(e * sin(angle.im)))
    }
    // lp2bp_zpk: each pole splits into two around the centre frequency; `order` zeros at 0.
    val lowpass = prototype.map { (it * Complex(bandwidth, 0.0)) / Complex(2.0, 0.0) }
    val shift = lowpass.map { (it.squared() - Complex(centre * centre, 0.0)).sqrt() }
    val bandPoles = lowpass.zip(shift) { p, s -> p + s } + lowpass.zip(shift) { p, s -> p - s }
    val bandGain = 1.0 * pow(bandwidth, order)

    // bilinear_zpk (fs = 2): zeros at 0 go to z = 1, those at infinity to z = -1.
    val four = Complex(4.0, 0.0)
    val poles = bandPoles.map { (four + it) / (four - it) }
    val zeros = List(order) { four / four } + List(order) { Complex(-1.0, 0.0) }
    var numerator = Complex(1.0, 0.0)
    repeat(order) { numerator = numerator * (four - Complex(0.0, 0.0)) }
    var denominator = Complex(1.0, 0.0)
    for (p in bandPoles) denominator = denominator * (four - p)
    val gain = bandGain * (numerator / denominator).re
    return zpkToSos(zeros, poles, gain)
}

/** Powers as Python's `float ** int` does them for the orders used (one rounding for a square). */
private fun pow(x: Double, n: Int): Double = if (n == 2) x * x else Math.pow(x, n.toDouble())

/**
 * Direct form II transposed, section after section, as scipy's `sosfilt`, carrying its state
 * between calls so a signal filtered in chunks equals the signal filtered whole.
 */
class SosFilter(private val sos: Array<DoubleArray>) {
    private val state = Array(sos.size) { DoubleArray(2) }

    fun filter(x: DoubleArray): DoubleArray {
        val y = DoubleArray(x.size)
        for (n in x.indices) {
            var current = x[n]
            for (s in sos.indices) {
                val c = sos[s]
                val z = state[s]
                val next = c[0] * current + z[0]
                z[0] = c[1] * current - c[4] * next + z[1]
                z[1] = c[2] * current - c[5] * next
                current = next
            }
            y[n] = current
        }
        return y
    }
}

/** A complex number; the design runs once per rate, so unfused products (within an ulp of scipy's) are enough. */
private data class Complex(val re: Double, val im: Double) {
    operator fun plus(o: Complex) = Complex(re + o.re, im + o.im)
    operator fun minus(o: Complex) = Complex(re - o.re, im - o.im)
    operator fun times(o: Complex) = Complex(re * o.re - im * o.im, re * o.im + im * o.re)

    fun squared() = this * this
    fun conj() = Complex(re, -im)
    val isReal get() = im == 0.0
    fun abs() = Math.hypot(re, im)

    /** Smith's division, numpy's. */
    operator fun div(o: Complex): Complex = if (abs(o.re) >= abs(o.im)) {
        val rat = o.im / o.re
        val scl = 1.0 / (o.re + o.im * rat)
        Complex((re + im * rat) * scl, (im - re * rat) * scl)
    } else {
        val rat = o.re / o.im
        val scl = 1.0 / (o.im + o.re * rat)
        Complex((re * rat + im) * scl, (im * rat - re) * scl)
    }

    /** glibc's csqrt (numpy's complex sqrt) for finite values. */
    fun sqrt(): Complex {
        if (im == 0.0) {
            return if (re < 0) Complex(0.0, Math.copySign(kotlin.math.sqrt(-re), im))
            else Complex(abs(kotlin.math.sqrt(re)), Math.copySign(0.0, im))
        }
        if (re == 0.0) {
            val r = kotlin.math.sqrt(0.5 * abs(im))
            return Complex(r, Math.copySign(r, im))
        }
        val d = Math.hypot(re, im)
        return if (re > 0) {
            val r = kotlin.math.sqrt(0.5 * (d + re))
            Complex(r, Math.copySign(0.5 * (im / r), im))
        } else {
            val s = kotlin.math.sqrt(0.5 * (d - re))
            Complex(abs(0.5 * (im / s)), Math.copySign(s, im))
        }
    }
}

/**
 * scipy's `zpk2sos` with "nearest" pairing for a digital filter: the pole nearest the unit circle
 * goes last, with the zeros nearest it, down to the first section, which takes the gain.
 */
private fun zpkToSos(zerosIn: List<Complex>, polesIn: List<Complex>, gain: Double): Array<DoubleArray> {
    var zeros = zerosIn.toMutableList()
    var poles = polesIn.toMutableList()
    while (zeros.size < poles.size) zeros.add(Complex(0.0, 0.0))
    while (poles.size < zeros.size) poles.add(Complex(0.0, 0.0))
    val nSections = (poles.size + 1) / 2
    if (poles.size % 2 == 1) {
        poles.add(Complex(0.0, 0.0))
        zeros.add(Complex(0.0, 0.0))
    }
    zeros = conjugatePairsThenReals(zeros)
    poles = conjugatePairsThenReals(poles)

    fun worst(candidates: List<Complex>): Int = candidates.indices.minBy { abs(1 - candidates[it].abs()) }
    fun nearest(from: List<Complex>, to: Complex, which: String): Int {
        val order = from.indices.sortedBy { (from[it] - to).abs() }
        return when (which) {
            "real" -> order.first { from[it].isReal }
            "complex" -> order.first { !from[it].isReal }
            else -> order.first()
        }
    }

    val sos = Array(nSections) { DoubleArray(6) }
    for (si in nSections - 1 downTo 0) {
        val p1 = poles.removeAt(worst(poles))
        if (p1.isReal && poles.none { it.isReal }) {
            // The last real pole: a first-order section, paired with the nearest real zero.
            val z1 = zeros.removeAt(nearest(zeros, p1, "real"))
            sos[si] = section(listOf(z1, Complex(0.0, 0.0)), listOf(p1, Complex(0.0, 0.0)))
        } else if (poles.size + 1 == zeros.size && !p1.isReal &&
            poles.count { it.isReal } == 1 && zeros.count { it.isReal } == 1
        ) {
            // One real pole and one real zero left for later: this pair must take a complex zero.
            val z1 = zeros.removeAt(nearest(zeros, p1, "complex"))
            sos[si] = section(listOf(z1, z1.conj()), listOf(p1, p1.conj()))
        } else {
            val p2 = if (p1.isReal) {
                val reals = poles.indices.filter { poles[it].isReal }
                poles.removeAt(reals[worst(reals.map { poles[it] })])
            } else {
                p1.conj()
            }
            sos[si] = if (zeros.isEmpty()) {
                section(emptyList(), listOf(p1, p2))
            } else {
                val z1 = zeros.removeAt(nearest(zeros, p1, "any"))
                when {
                    !z1.isReal -> section(listOf(z1, z1.conj()), listOf(p1, p2))
                    zeros.isNotEmpty() -> section(listOf(z1, zeros.removeAt(nearest(zeros, p1, "real"))), listOf(p1, p2))
                    else -> section(listOf(z1), listOf(p1, p2))
                }
            }
        }
    }
    for (i in 0 until 3) sos[0][i] *= gain
    return sos
}

/**
 * scipy's `_cplxreal`: one of each conjugate pair (positive imaginary part, the pair averaged), sorted
 * by real part, then the real values sorted.
 */
private fun conjugatePairsThenReals(values: List<Complex>): MutableList<Complex> {
    if (values.isEmpty()) return mutableListOf()
    val tolerance = 100 * Math.ulp(1.0)
    val sorted = values.sortedWith(compareBy<Complex> { it.re }.thenBy { abs(it.im) })
    val isReal = sorted.map { abs(it.im) <= tolerance * it.abs() }
    val reals = sorted.filterIndexed { i, _ -> isReal[i] }.map { Complex(it.re, 0.0) }
    val complex = sorted.filterIndexed { i, _ -> !isReal[i] }
    val positive = complex.filter { it.im > 0 }.toMutableList()
    val negative = complex.filter { it.im < 0 }.toMutableList()
    require(positive.size == negative.size) { "a complex value without its conjugate" }
    // Runs of (nearly) the same real part are ordered by the size of the imaginary part.
    var start = 0
    while (start < positive.size) {
        var stop = start + 1
        while (stop < positive.size && positive[stop].re - positive[stop - 1].re <= tolerance * positive[stop - 1].abs()) stop++
        positive.subList(start, stop).sortBy { abs(it.im) }
        negative.subList(start, stop).sortBy { abs(it.im) }
        start = stop
    }
    val pairs = positive.zip(negative) { p, n ->
        require((p - n.conj()).abs() <= tolerance * n.abs()) { "a complex value without its conjugate" }
        (p + n.conj()) / Complex(2.0, 0.0)
    }
    return (pairs + reals).toMutableList()
}

/** One second-order section from up to two zeros and two poles (numpy's `poly`, real parts). */
private fun section(zeros: List<Complex>, poles: List<Complex>): DoubleArray {
    val b = poly(zeros)
    val a = poly(poles)
    val row = DoubleArray(6)
    for (i in b.indices) row[3 - b.size + i] = b[i]
    for (i in a.indices) row[6 - a.size + i] = a[i]
    return row
}

/** Coefficients of the monic polynomial with these roots, as `np.poly` convolves them in. */
private fun poly(roots: List<Complex>): DoubleArray {
    var c = listOf(Complex(1.0, 0.0))
    for (root in roots) {
        val factor = listOf(Complex(1.0, 0.0), Complex(-root.re, -root.im))
        c = List(c.size + 1) { k ->
            var sum: Complex? = null
            for (i in c.indices) {
                val j = k - i
                if (j in 0..1) {
                    val term = c[i] * factor[j]
                    sum = sum?.plus(term) ?: term
                }
            }
            sum!!
        }
    }
    return DoubleArray(c.size) { c[it].re }
}
