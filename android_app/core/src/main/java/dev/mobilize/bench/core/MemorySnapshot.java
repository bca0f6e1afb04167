package dev.mobilize.bench.core;

import java.util.LinkedHashMap;
import java.util.Map;

/** Memory of the process that ran the model, in kB (the schema's `memory` object). */
public final class MemorySnapshot {
  public final Double peakRssKb;
  public final Double rssKb;
  public final Double pssKb;
  public final Double nativeHeapKb;

  public MemorySnapshot(Double peakRssKb, Double rssKb, Double pssKb, Double nativeHeapKb) {
    this.peakRssKb = peakRssKb;
    this.rssKb = rssKb;
    this.pssKb = pssKb;
    this.nativeHeapKb = nativeHeapKb;
  }

  /** VmHWM and VmRSS from the text of /proc/self/status, with the other figures given. */
  public static MemorySnapshot fromProcStatus(String status, Double pssKb, Double nativeHeapKb) {
    return new MemorySnapshot(
        procStatusKb(status, "VmHWM"), procStatusKb(status, "VmRSS"), pssKb, nativeHeapKb);
  }

  /** One "Name:   1234 kB" field of /proc/self/status, or null when absent. */
  public static Double procStatusKb(String status, String field) {
    for (String line : status.split("\n")) {
      if (line.startsWith(field + ":")) {
        String[] parts = line.substring(field.length() + 1).trim().split("\\s+");
        try {
          return Double.valueOf(parts[0]);
        } catch (NumberFormatException e) {
          return null;
        }
      }
    }
    return null;
  }

  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("unit", "kB");
    json.put("peak_rss", peakRssKb);
    json.put("rss", rssKb);
    json.put("pss", pssKb);
    json.put("native_heap", nativeHeapKb);
    json.put("init_delta", null);
    json.put("overall_delta", null);
    return json;
  }
}
