package org.edgekit.app

import android.content.Context
import android.graphics.Canvas
import android.graphics.Paint
import android.graphics.RectF
import android.util.AttributeSet
import android.util.TypedValue
import android.view.MotionEvent
import android.view.View
import kotlin.math.ceil

/**
 * The night as a strip of minutes, an hour a row: flagged (apnea), not flagged, or no signal (neither
 * scored nor counted). Tapping a minute selects it and calls [onMinuteSelected].
 */
class NightStripView @JvmOverloads constructor(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    var onMinuteSelected: ((Int) -> Unit)? = null

    private var states: List<MinuteState> = emptyList()
    private var selected = -1

    private val density = resources.displayMetrics.density
    private val cellHeight = 20 * density
    private val rowGap = 4 * density
    private val labelWidth = 32 * density
    private val legendHeight = 28 * density
    private val cell = RectF()

    private val fills = mapOf(
        MinuteState.FLAGGED to fill(context.getColor(R.color.minute_flagged)),
        MinuteState.NOT_FLAGGED to fill(context.getColor(R.color.minute_clear)),
        MinuteState.NO_SIGNAL to fill(context.getColor(R.color.minute_no_signal)),
    )
    private val selection = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        style = Paint.Style.STROKE
        strokeWidth = 2 * density
        color = context.getColor(R.color.selection)
    }
    private val text = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        color = context.getColor(R.color.axis_text)
        textSize = TypedValue.applyDimension(TypedValue.COMPLEX_UNIT_SP, 12f, resources.displayMetrics)
    }
    private val legend = listOf(
        MinuteState.FLAGGED to context.getString(R.string.legend_flagged),
        MinuteState.NOT_FLAGGED to context.getString(R.string.legend_not_flagged),
        MinuteState.NO_SIGNAL to context.getString(R.string.legend_no_signal),
    )

    fun setMinutes(minuteStates: List<MinuteState>) {
        states = minuteStates
        selected = -1
        requestLayout()
        invalidate()
    }

    fun select(minute: Int) {
        selected = minute
        invalidate()
    }

    private val rows: Int get() = ceil(states.size / MINUTES_PER_ROW.toDouble()).toInt()

    override fun onMeasure(widthMeasureSpec: Int, heightMeasureSpec: Int) {
        val width = View.MeasureSpec.getSize(widthMeasureSpec)
        val wanted = paddingTop + paddingBottom + rows * (cellHeight + rowGap) + legendHeight
        setMeasuredDimension(width, View.resolveSize(ceil(wanted).toInt(), heightMeasureSpec))
    }

    private val cellWidth: Float get() = (width - paddingLeft - paddingRight - labelWidth) / MINUTES_PER_ROW

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val gap = if (cellWidth > 4 * density) density / 2 else 0f
        for ((minute, state) in states.withIndex()) {
            cellRect(minute)
            canvas.drawRect(cell.left + gap, cell.top, cell.right - gap, cell.bottom, fills.getValue(state))
        }
        for (row in 0 until rows) {
            val baseline = paddingTop + row * (cellHeight + rowGap) + cellHeight * 0.75f
            canvas.drawText(context.getString(R.string.hour_label, row), paddingLeft.toFloat(), baseline, text)
        }
        if (selected in states.indices) {
            cellRect(selected)
            canvas.drawRect(cell, selection)
        }
        // The legend, under the strip.
        var x = paddingLeft.toFloat()
        val top = paddingTop + rows * (cellHeight + rowGap) + 8 * density
        val swatch = 12 * density
        for ((state, label) in legend) {
            canvas.drawRect(x, top, x + swatch, top + swatch, fills.getValue(state))
            x += swatch + 4 * density
            canvas.drawText(label, x, top + swatch - 1 * density, text)
            x += text.measureText(label) + 14 * density
        }
    }

    private fun cellRect(minute: Int) {
        val row = minute / MINUTES_PER_ROW
        val column = minute % MINUTES_PER_ROW
        val left = paddingLeft + labelWidth + column * cellWidth
        val top = paddingTop + row * (cellHeight + rowGap)
        cell.set(left, top, left + cellWidth, top + cellHeight)
    }

    private fun minuteAt(x: Float, y: Float): Int {
        val column = ((x - paddingLeft - labelWidth) / cellWidth).toInt()
        val row = ((y - paddingTop) / (cellHeight + rowGap)).toInt()
        if (x < paddingLeft + labelWidth || y < paddingTop || column !in 0 until MINUTES_PER_ROW) return -1
        val minute = row * MINUTES_PER_ROW + column
        return if (minute in states.indices) minute else -1
    }

    override fun onTouchEvent(event: MotionEvent): Boolean {
        if (states.isEmpty()) return super.onTouchEvent(event)
        when (event.actionMasked) {
            MotionEvent.ACTION_DOWN -> return true
            MotionEvent.ACTION_UP -> {
                val minute = minuteAt(event.x, event.y)
                if (minute >= 0) {
                    select(minute)
                    performClick()
                    onMinuteSelected?.invoke(minute)
                }
                return true
            }
        }
        return super.onTouchEvent(event)
    }

    override fun performClick(): Boolean {
        super.performClick()
        return true
    }

    private fun fill(color: Int) = Paint().apply {
        style = Paint.Style.FILL
        this.color = color
    }

    companion object {
        const val MINUTES_PER_ROW = 60
    }
}
