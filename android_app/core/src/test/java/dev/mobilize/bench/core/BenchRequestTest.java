package dev.mobilize.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.HashMap;
import java.util.Map;
import org.junit.Test;

public class BenchRequestTest {
  private static Map<String, Object> minimal() {
    Map<String, Object> extras = new HashMap<>();
    extras.put("run_id", "r1");
    extras.put("model_path", "/data/local/tmp/mobilize/m.tflite");
    return extras;
  }

  private static String problemsOf(Map<String, Object> extras) {
    try {
      BenchRequest.parse(extras);
    } catch (BenchFailure failure) {
      assertEquals(Status.INVALID_ARGUMENTS, failure.status);
      return failure.getMessage();
    }
    fail("expected invalid_arguments");
    return null;
  }

  @Test
  public void defaultsMatchTheEmulatedApp() throws BenchFailure {
    BenchRequest request = BenchRequest.parse(minimal());
    assertEquals(Delegate.CPU, request.delegate);
    assertEquals(1, request.threads);
    assertEquals(1, request.warmupRuns);
    assertEquals(50, request.numRuns);
    assertEquals(GpuPrecision.FP16, request.gpuPrecision);
    assertFalse(request.wantsQuality());
  }

  @Test
  public void readsEveryExtra() throws BenchFailure {
    Map<String, Object> extras = minimal();
    extras.put("delegate", "gpu");
    extras.put("threads", 4);
    extras.put("warmup_runs", 0);
    extras.put("num_runs", 7);
    extras.put("gpu_precision", "fp32");
    extras.put("quality_inputs_dir", "/data/local/tmp/q/in");
    extras.put("quality_outputs_dir", "/data/local/tmp/q/out");
    BenchRequest request = BenchRequest.parse(extras);
    assertEquals(Delegate.GPU, request.delegate);
    assertEquals(4, request.threads);
    assertEquals(0, request.warmupRuns);
    assertEquals(7, request.numRuns);
    assertEquals(GpuPrecision.FP32, request.gpuPrecision);
    assertTrue(request.wantsQuality());
    assertEquals("/data/local/tmp/q/out", request.qualityOutputsDir);
  }

  @Test
  public void integerPassedAsStringIsAccepted() throws BenchFailure {
    Map<String, Object> extras = minimal();
    extras.put("threads", " 3 ");
    assertEquals(3, BenchRequest.parse(extras).threads);
  }

  @Test
  public void everyProblemIsNamedAtOnce() {
    Map<String, Object> extras = new HashMap<>();
    extras.put("run_id", "a/b");
    extras.put("delegate", "tpu");
    extras.put("gpu_precision", "int8");
    extras.put("threads", 0);
    extras.put("warmup_runs", -1);
    extras.put("num_runs", "many");
    String problems = problemsOf(extras);
    assertTrue(problems, problems.contains("run_id must be a non-empty name without '/'"));
    assertTrue(problems, problems.contains("model_path is missing"));
    assertTrue(problems, problems.contains("delegate must be one of cpu, gpu, nnapi (got 'tpu')"));
    assertTrue(problems, problems.contains("gpu_precision must be one of fp16, fp32"));
    assertTrue(problems, problems.contains("threads must be an integer >= 1"));
    assertTrue(problems, problems.contains("warmup_runs must be an integer >= 0"));
    assertTrue(problems, problems.contains("num_runs must be an integer (pass it with --ei)"));
  }

  @Test
  public void qualityFoldersGoTogether() {
    Map<String, Object> extras = minimal();
    extras.put("quality_inputs_dir", "/in");
    assertTrue(problemsOf(extras).contains("quality_inputs_dir and quality_outputs_dir go together"));
  }

  @Test
  public void stringExtraGivenAsNumberIsRefused() {
    Map<String, Object> extras = minimal();
    extras.put("delegate", 1);
    assertTrue(problemsOf(extras).contains("delegate must be a string (pass it with --es)"));
  }

  @Test
  public void runIdMustNameAFile() {
    assertTrue(BenchRequest.isValidRunId("20261123T084500-1a2b3c4d"));
    assertFalse(BenchRequest.isValidRunId("../x"));
    assertFalse(BenchRequest.isValidRunId(".hidden"));
    assertFalse(BenchRequest.isValidRunId(""));
    assertFalse(BenchRequest.isValidRunId(null));
    assertNull(Delegate.fromWire("CPU"));
  }
}
