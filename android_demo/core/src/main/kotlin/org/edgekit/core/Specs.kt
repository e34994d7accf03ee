package org.edgekit.core

import org.json.JSONArray
import org.json.JSONObject

/**
 * A named rule as the bundle's manifest carries it (`teacher/_spec.py`: {"name": ..., field: value}):
 * refused when it is another rule, or when a field is missing or unknown, so a constant the core does
 * not read can never be silently ignored.
 */
class SpecFields(private val json: JSONObject, name: String, fields: Set<String>, kind: String) {
    init {
        val found = json.optString("name", "")
        if (found != name) throw BundleError("$kind '$found' is not implemented here (this core implements $name)")
        val keys = json.keys().asSequence().filter { it != "name" }.toSet()
        val missing = (fields - keys).sorted()
        val unknown = (keys - fields).sorted()
        if (missing.isNotEmpty() || unknown.isNotEmpty()) {
            throw BundleError("$kind $name: missing $missing, unknown $unknown")
        }
    }

    fun double(key: String): Double = json.getDouble(key)
    fun int(key: String): Int = json.getInt(key)
    fun string(key: String): String = json.getString(key)
    fun doubles(key: String): DoubleArray = json.getJSONArray(key).doubles()
}

internal fun JSONArray.doubles(): DoubleArray = DoubleArray(length()) { getDouble(it) }
internal fun JSONArray.longs(): LongArray = LongArray(length()) { getLong(it) }
internal fun JSONArray.strings(): List<String> = List(length()) { getString(it) }
