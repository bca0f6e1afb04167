package dev.mobilize.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.Collections;
import org.junit.Test;

public class DelegateLogTest {
  // `logcat -d -v threadtime` lines in the shape the native runtime logs them (tag tflite).
  private static final String GPU_LOG =
      "11-23 08:45:00.101  4321  4321 I tflite  : Created TensorFlow Lite delegate for GPU.\n"
          + "11-23 08:45:00.102  4321  4321 W tflite  : Following operations are not supported by"
          + " GPU delegate:\n"
          + "11-23 08:45:00.102  4321  4321 W tflite  : SQUARED_DIFFERENCE: Operation is not"
          + " supported.\n"
          + "11-23 08:45:00.102  4321  4321 W tflite  : RSQRT: Operation is not supported.\n"
          + "11-23 08:45:00.102  4321  4321 W tflite  : 40 operations will run on the GPU, and"
          + " the remaining 4 operations will run on the CPU.\n"
          + "11-23 08:45:00.103  4321  4321 I tflite  : Replacing 40 out of 44 node(s) with"
          + " delegate (TfLiteGpuDelegateV2) node, yielding 3 partitions for the whole graph.\n";

  @Test
  public void readsTheGpuDelegatesLines() {
    DelegateLog log = DelegateLog.parse(GPU_LOG, "TfLiteGpuDelegate");
    assertTrue(log.found);
    assertEquals(40, log.nodesDelegated);
    assertEquals(44, log.nodesTotal);
    assertEquals(3, log.partitions);
    assertEquals(Arrays.asList("RSQRT", "SQUARED_DIFFERENCE"), log.unsupportedOps);
  }

  @Test
  public void sumsSubgraphsOfTheAskedDelegateOnly() {
    String log =
        "Replacing 10 out of 12 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 2"
            + " partitions for subgraph 0.\n"
            + "Replacing 5 out of 5 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1"
            + " partitions for subgraph 1.\n"
            + "Replacing 9 out of 9 node(s) with delegate (TfLiteNnapiDelegate) node, yielding 1"
            + " partitions.\n";
    DelegateLog xnnpack = DelegateLog.parse(log, "TfLiteXNNPackDelegate");
    assertEquals(15, xnnpack.nodesDelegated);
    assertEquals(17, xnnpack.nodesTotal);
    assertEquals(3, xnnpack.partitions);
    assertEquals(Collections.<String>emptyList(), xnnpack.unsupportedOps);
  }

  @Test
  public void nothingLoggedIsNotFound() {
    DelegateLog log = DelegateLog.parse("I tflite  : Initialized TensorFlow Lite runtime.\n", "TfLiteGpuDelegate");
    assertFalse(log.found);
    assertEquals(0, log.nodesDelegated);
  }
}
