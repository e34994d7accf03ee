package org.edgekit.app

import android.content.Context
import android.graphics.Canvas
import android.graphics.Paint
import android.graphics.Path
import android.util.AttributeSet
import android.util.TypedValue
import android.view.View
import java.util.Locale

/**
 * One minute's evidence: the model's input window (night-rescaled RR in s on the bundle's grid, the
 * minute with its context minutes each side), the minute itself shaded.
 */
class RrWindowView @JvmOverloads constructor(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    private var values: FloatArray? = null
    private var samplesPerMinute = 1
    private var contextMinutes = 0
    private var highlight: IntRange = IntRange.EMPTY

    private val density = resources.displayMetrics.density
    private val yLabelWidth = 44 * density
    private val xLabelHeight = 22 * density
    private val insetTop = 8 * density
    private val path = Path()

    private val line = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        style = Paint.Style.STROKE
        strokeWidth = 1.5f * density
        color = context.getColor(R.color.rr_line)
    }
    private val shade = Paint().apply {
        style = Paint.Style.FILL
        color = context.getColor(R.color.minute_highlight)
    }
    private val axis = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        style = Paint.Style.STROKE
        strokeWidth = density
        color = context.getColor(R.color.axis_text)
    }
    private val text = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        color = context.getColor(R.color.axis_text)
        textSize = TypedValue.applyDimension(TypedValue.COMPLEX_UNIT_SP, 11f, resources.displayMetrics)
    }

    /** `window`'s samples `minute` are the minute itself; `samplesPerMinute` sets the minute ticks. */
    fun show(window: FloatArray, minute: IntRange, samplesPerMinute: Int, contextMinutes: Int) {
        values = window
        highlight = minute
        this.samplesPerMinute = maxOf(1, samplesPerMinute)
        this.contextMinutes = contextMinutes
        invalidate()
    }

    fun clear() {
        values = null
        invalidate()
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val window = values ?: return
        if (window.size < 2) return
        val plotLeft = paddingLeft + yLabelWidth
        val plotRight = (width - paddingRight).toFloat()
        val plotTop = paddingTop + insetTop
        val plotBottom = height - paddingBottom - xLabelHeight
        if (plotRight <= plotLeft || plotBottom <= plotTop) return

        var low = window.minOrNull()!!.toDouble()
        var high = window.maxOrNull()!!.toDouble()
        if (high - low < MIN_SPAN_S) {
            val middle = (high + low) / 2
            low = middle - MIN_SPAN_S / 2
            high = middle + MIN_SPAN_S / 2
        }
        val pad = (high - low) * 0.05
        low -= pad
        high += pad
        val last = window.size - 1
        fun x(i: Int) = plotLeft + (plotRight - plotLeft) * i / last
        fun y(v: Double) = (plotBottom - (plotBottom - plotTop) * ((v - low) / (high - low))).toFloat()

        if (!highlight.isEmpty()) {
            canvas.drawRect(x(highlight.first), plotTop, x(minOf(highlight.last + 1, last)), plotBottom, shade)
        }
        path.reset()
        path.moveTo(x(0), y(window[0].toDouble()))
        for (i in 1..last) path.lineTo(x(i), y(window[i].toDouble()))
        canvas.drawPath(path, line)

        // Axes: RR (s) at the top and bottom of the range; minutes from the minute's start.
        canvas.drawLine(plotLeft, plotTop, plotLeft, plotBottom, axis)
        canvas.drawLine(plotLeft, plotBottom, plotRight, plotBottom, axis)
        canvas.drawText(String.format(Locale.US, "%.2f s", high - pad), paddingLeft.toFloat(), y(high - pad) + text.textSize / 2, text)
        canvas.drawText(String.format(Locale.US, "%.2f s", low + pad), paddingLeft.toFloat(), y(low + pad), text)
        var tick = 0
        while (tick * samplesPerMinute <= last + 1) {
            val at = x(minOf(tick * samplesPerMinute, last))
            canvas.drawLine(at, plotBottom, at, plotBottom + 4 * density, axis)
            val minutes = tick - contextMinutes
            val label = context.getString(R.string.window_tick, if (minutes > 0) "+$minutes" else "$minutes")
            val labelWidth = text.measureText(label)
            val labelX = minOf(maxOf(at - labelWidth / 2, plotLeft - yLabelWidth / 2), plotRight - labelWidth)
            canvas.drawText(label, labelX, plotBottom + 4 * density + text.textSize, text)
            tick++
        }
    }

    companion object {
        /** The narrowest RR range shown (s), so a steady minute is not blown up into noise. */
        const val MIN_SPAN_S = 0.1
    }
}
