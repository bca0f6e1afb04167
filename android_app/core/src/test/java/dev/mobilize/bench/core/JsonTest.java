package dev.mobilize.bench.core;

import static org.junit.Assert.assertEquals;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
  @Test
  public void escapesStringsAsJsonRequires() {
    StringBuilder out = new StringBuilder();
    Json.appendString(out, "a\"b\\c\nd\te\u0001\u2028");
    assertEquals("\"a\\\"b\\\\c\\nd\\te\\u0001\\u2028\"", out.toString());
  }

  @Test
  public void writesNestedValuesInOrder() {
    Map<String, Object> inner = new LinkedHashMap<>();
    inner.put("n", null);
    inner.put("ok", true);
    Map<String, Object> map = new LinkedHashMap<>();
    map.put("count", 3);
    map.put("mean", 2.5);
    map.put("list", Arrays.<Object>asList(1, "x"));
    map.put("samples", new double[] {1.0, 2.25});
    map.put("inner", inner);
    map.put("empty", new LinkedHashMap<String, Object>());
    assertEquals(
        "{\n  \"count\": 3,\n  \"mean\": 2.5,\n  \"list\": [1, \"x\"],\n"
            + "  \"samples\": [1.0, 2.25],\n  \"inner\": {\n    \"n\": null,\n    \"ok\": true\n  },\n"
            + "  \"empty\": {}\n}\n",
        Json.write(map));
  }

  @Test
  public void nonFiniteNumbersBecomeNull() {
    assertEquals("[null, null]\n", Json.write(Arrays.<Object>asList(Double.NaN, Double.POSITIVE_INFINITY)));
  }

  @Test
  public void doublesKeepTheirValue() {
    assertEquals("1200.0", Json.format(1200.0));
    assertEquals("1.5E-7", Json.format(1.5e-7));
    assertEquals("12345.678", Json.format(12345.678));
    assertEquals(0.1 + 0.2, Double.parseDouble(Json.format(0.1 + 0.2)), 0.0);
  }
}
