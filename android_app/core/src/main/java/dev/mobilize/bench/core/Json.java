package dev.mobilize.bench.core;

import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * A small JSON writer for the result: maps, lists, strings, numbers, booleans and null.
 *
 * <p>Kept here rather than org.json so the core runs on the JDK; non-finite numbers, which JSON
 * cannot carry, are written as null.
 */
public final class Json {
  private Json() {}

  public static String write(Object value) {
    StringBuilder out = new StringBuilder();
    append(out, value, 0);
    out.append('\n');
    return out.toString();
  }

  private static void append(StringBuilder out, Object value, int depth) {
    if (value == null) {
      out.append("null");
    } else if (value instanceof String) {
      appendString(out, (String) value);
    } else if (value instanceof Boolean) {
      out.append(((Boolean) value).booleanValue() ? "true" : "false");
    } else if (value instanceof Double || value instanceof Float) {
      double number = ((Number) value).doubleValue();
      out.append(Double.isNaN(number) || Double.isInfinite(number) ? "null" : format(number));
    } else if (value instanceof Number) {
      out.append(((Number) value).longValue());
    } else if (value instanceof Map) {
      appendObject(out, (Map<?, ?>) value, depth);
    } else if (value instanceof List) {
      appendArray(out, (List<?>) value, depth);
    } else if (value instanceof double[]) {
      double[] numbers = (double[]) value;
      out.append('[');
      for (int i = 0; i < numbers.length; i++) {
        out.append(i == 0 ? "" : ", ");
        append(out, numbers[i], depth + 1);
      }
      out.append(']');
    } else {
      throw new IllegalArgumentException("cannot write " + value.getClass() + " as JSON");
    }
  }

  /** Shortest text that reads back as the same double (Java's algorithm), as valid JSON. */
  static String format(double number) {
    if (number == Math.rint(number) && Math.abs(number) < 1e15) {
      return Long.toString((long) number) + ".0";
    }
    return Double.toString(number); // e.g. 1.5E-7: JSON accepts an exponent with E
  }

  private static void appendObject(StringBuilder out, Map<?, ?> map, int depth) {
    if (map.isEmpty()) {
      out.append("{}");
      return;
    }
    out.append("{\n");
    Iterator<? extends Map.Entry<?, ?>> entries = map.entrySet().iterator();
    while (entries.hasNext()) {
      Map.Entry<?, ?> entry = entries.next();
      indent(out, depth + 1);
      appendString(out, String.valueOf(entry.getKey()));
      out.append(": ");
      append(out, entry.getValue(), depth + 1);
      out.append(entries.hasNext() ? ",\n" : "\n");
    }
    indent(out, depth);
    out.append('}');
  }

  private static void appendArray(StringBuilder out, List<?> list, int depth) {
    out.append('[');
    for (int i = 0; i < list.size(); i++) {
      out.append(i == 0 ? "" : ", ");
      append(out, list.get(i), depth + 1);
    }
    out.append(']');
  }

  private static void indent(StringBuilder out, int depth) {
    for (int i = 0; i < depth; i++) {
      out.append("  ");
    }
  }

  static void appendString(StringBuilder out, String text) {
    out.append('"');
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      switch (c) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\r':
          out.append("\\r");
          break;
        case '\t':
          out.append("\\t");
          break;
        default:
          if (c < 0x20 || c == 0x2028 || c == 0x2029) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
      }
    }
    out.append('"');
  }
}
