package dev.mobilize.bench.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What really ran after the delegate was applied: the schema's `delegate` object. */
public final class DelegateReport {
  public final boolean applied;
  /** xnnpack, builtin, gpu or nnapi. */
  public final String name;
  public final Integer nodesDelegated;
  public final Integer nodesTotal;
  public final Integer partitions;
  public final List<String> fallbackOps;
  public final String message;

  public DelegateReport(
      boolean applied,
      String name,
      Integer nodesDelegated,
      Integer nodesTotal,
      Integer partitions,
      List<String> fallbackOps,
      String message) {
    this.applied = applied;
    this.name = name;
    this.nodesDelegated = nodesDelegated;
    this.nodesTotal = nodesTotal;
    this.partitions = partitions;
    this.fallbackOps = new ArrayList<>(fallbackOps);
    this.message = message;
  }

  public Map<String, Object> toJson(Delegate requested) {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("requested", requested.wireName);
    json.put("applied", applied);
    json.put("name", name);
    json.put("nodes_delegated", nodesDelegated);
    json.put("nodes_total", nodesTotal);
    json.put("partitions", partitions);
    json.put("fallback_ops", new ArrayList<Object>(fallbackOps));
    json.put("message", message);
    return json;
  }
}
