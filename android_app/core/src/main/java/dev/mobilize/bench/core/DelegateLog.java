package dev.mobilize.bench.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads what the LiteRT runtime logged while a delegate was applied. Its Java API does not say
 * how many nodes a delegate took; the native runtime logs it (tag "tflite"), and an app may read
 * its own process's logcat: "Replacing N out of M node(s) with delegate (NAME) node, yielding K
 * partitions ..." (one line per subgraph) and, from the GPU delegate, the ops it cannot run.
 */
public final class DelegateLog {
  private static final Pattern REPLACING =
      Pattern.compile(
          "Replacing (\\d+) out of (\\d+) node\\(s\\) with delegate \\(([^)]+)\\) node,"
              + " yielding (\\d+) partitions");
  /** "Following operations are not supported by GPU delegate:" (TFLite 2.1 and older: "Next"). */
  private static final Pattern UNSUPPORTED_HEADER =
      Pattern.compile("\\b(?:Following|Next) operations are not supported by");
  /**
   * "CONV_2D: reason", "CUSTOM TFLite_Detection_PostProcess: reason"; the reason may be blank
   * ("DEQUANTIZE: ", trimmed to "DEQUANTIZE:").
   */
  private static final Pattern UNSUPPORTED_OP =
      Pattern.compile("^([A-Z][A-Z0-9_]*(?: [\\w.]+)?):(?:\\s|$)");
  /** Severity words the runtime prints before a message: never op names. */
  private static final List<String> SEVERITIES =
      Arrays.asList("INFO", "WARNING", "ERROR", "VERBOSE", "DEBUG", "FATAL");
  /** Logcat's threadtime/brief prefixes end in "tflite  : ", "tflite: " or "tflite  (123): ". */
  private static final Pattern LOGCAT_PREFIX =
      Pattern.compile("^.*?\\btflite\\s*(?:\\(\\s*\\d+\\))?:\\s?");
  /** A threadtime line of another tag (another thread of the process) inside the list. */
  private static final Pattern OTHER_TAG =
      Pattern.compile(
          "^\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d+\\s+\\d+\\s+\\d+ [VDIWEFA] (?!tflite\\s*:)");

  public final int nodesDelegated;
  public final int nodesTotal;
  public final int partitions;
  public final boolean found;
  public final List<String> unsupportedOps;

  private DelegateLog(int delegated, int total, int partitions, boolean found, List<String> ops) {
    this.nodesDelegated = delegated;
    this.nodesTotal = total;
    this.partitions = partitions;
    this.found = found;
    this.unsupportedOps = ops;
  }

  /** Sums the Replacing lines of delegates whose kernel name starts with one of `kernelNames`. */
  public static DelegateLog parse(String log, String... kernelNames) {
    int delegated = 0;
    int total = 0;
    int partitions = 0;
    boolean found = false;
    Matcher matcher = REPLACING.matcher(log);
    while (matcher.find()) {
      if (startsWithAny(matcher.group(3), kernelNames)) {
        found = true;
        delegated += Integer.parseInt(matcher.group(1));
        total += Integer.parseInt(matcher.group(2));
        partitions += Integer.parseInt(matcher.group(4));
      }
    }
    return new DelegateLog(delegated, total, partitions, found, unsupportedOps(log));
  }

  static List<String> unsupportedOps(String log) {
    TreeSet<String> ops = new TreeSet<>();
    boolean listing = false;
    for (String rawLine : log.split("\r?\n")) {
      if (UNSUPPORTED_HEADER.matcher(rawLine).find()) {
        listing = true;
        continue;
      }
      if (!listing || OTHER_TAG.matcher(rawLine).find()) {
        continue;
      }
      String line = LOGCAT_PREFIX.matcher(rawLine).replaceFirst("").trim();
      Matcher op = UNSUPPORTED_OP.matcher(line);
      if (op.find() && !SEVERITIES.contains(op.group(1))) {
        ops.add(op.group(1));
      } else {
        listing = false;
      }
    }
    return new ArrayList<>(ops);
  }

  private static boolean startsWithAny(String name, String[] prefixes) {
    for (String prefix : prefixes) {
      if (name.startsWith(prefix)) {
        return true;
      }
    }
    return false;
  }
}
