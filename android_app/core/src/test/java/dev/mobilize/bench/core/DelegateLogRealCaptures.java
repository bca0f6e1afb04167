package dev.mobilize.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;

import java.util.Arrays;
import org.junit.Test;

/**
 * DelegateLog on GPU-delegate lines captured on real devices and posted publicly (verbatim lines,
 * trailing spaces kept, from tests/device_bench/captured/real/gpu_delegate_log__*.txt; each
 * constant names its file). Run by tests/android_app/test_delegate_log_captures.py; the name
 * does not end in "Test" so that test_java_core.py's count of the main suite stays as it is.
 */
public class DelegateLogRealCaptures {
  /** gpu_delegate_log__tensorflow-41485-dequantize-blank.txt: ops with a blank reason. */
  static final String DEQUANTIZE_BLANK =
      "ERROR: Following operations are not supported by GPU delegate:\n"
          + "DEQUANTIZE: \n"
          + "RESIZE_BILINEAR: \n"
          + "197 operations will run on the GPU, and the remaining 1 operations will run on the"
          + " CPU.\n";

  /** gpu_delegate_log__tensorflow-35389-next-operations-blank-reasons.txt: TFLite <= 2.1. */
  static final String NEXT_OPERATIONS =
      "INFO: Initialized TensorFlow Lite runtime.\n"
          + "INFO: Created TensorFlow Lite delegate for GPU.\n"
          + "ERROR: Next operations are not supported by GPU delegate:\n"
          + "CONCATENATION: \n"
          + "CONV_2D: \n"
          + "CUSTOM TFLite_Detection_PostProcess: Operation is not supported.\n"
          + "DEPTHWISE_CONV_2D: \n"
          + "LOGISTIC: \n"
          + "RESHAPE: \n"
          + "First 0 operations will run on the GPU, and the remaining 64 on the CPU.\n";

  /** gpu_delegate_log__tensorflow-57907-movenet-trailing-spaces.txt (a blank line at the end). */
  static final String TRAILING_SPACES =
      "ERROR: Following operations are not supported by GPU delegate: \n"
          + "ARG_MAX: Operation is not supported. \n"
          + "CAST: Not supported cast case\n"
          + "CONCATENATION: OP is supported, but tensor type/shape doesn't supported. \n"
          + "DEQUANTIZE: \n"
          + "FLOOR_DIV: OP is supported, but tensor type/shape doesn't supported. \n"
          + "GATHER_ND: Operation is not supported. \n"
          + "MUL: OP is supported, but tensor type/shape doesn't supported. \n"
          + "PACK: OP is supported, but tensor type/shape doesn't supported. \n"
          + "RESHAPE: OP is supported, but tensor type/shape doesn't supported. \n"
          + "SUB: OP is supported, but tensor type/shape doesn't supported. \n"
          + "UNPACK: Operation is not supported. \n"
          + "\n"
          + "97 operations will run on the GPU, and the remaining 200 operations will run on the"
          + " CPU.\n";

  /** gpu_delegate_log__tensorflow-56301-benchmark-app-threadtime.txt: `logcat -v threadtime`. */
  static final String THREADTIME =
      "05-31 10:38:42.589 22206 22206 I tflite  : GPU delegate created.\n"
          + "05-31 10:38:42.607 22206 22206 E tflite  : Following operations are not supported by"
          + " GPU delegate:\n"
          + "05-31 10:38:42.607 22206 22206 E tflite  : UNPACK: Operation is not supported.\n";

  /** gpu_delegate_log__tensorflow-56545-android-studio-logcat.txt: unprefixed continuations. */
  static final String ANDROID_STUDIO =
      "2022-06-23 22:29:14.326 4381-4381/com.naver.papago.artranslator E/tflite: Following"
          + " operations are not supported by GPU delegate:\n"
          + "    ADD: OP is supported, but tensor type/shape isn't compatible.\n"
          + "    CAST: Not supported cast case\n"
          + "    GATHER: Operation is not supported.\n"
          + "    MUL: OP is supported, but tensor type/shape isn't compatible.\n"
          + "    STRIDED_SLICE: Max version supported: 2. Requested version 4.\n"
          + "    UNPACK: Operation is not supported.\n"
          + "    357 operations will run on the GPU, and the remaining 1283 operations will run on"
          + " the CPU.\n";

  @Test
  public void opsWithABlankReasonAreListed() {
    assertEquals(
        Arrays.asList("DEQUANTIZE", "RESIZE_BILINEAR"),
        DelegateLog.unsupportedOps(DEQUANTIZE_BLANK));
  }

  @Test
  public void olderNextOperationsWording() {
    assertEquals(
        Arrays.asList(
            "CONCATENATION",
            "CONV_2D",
            "CUSTOM TFLite_Detection_PostProcess",
            "DEPTHWISE_CONV_2D",
            "LOGISTIC",
            "RESHAPE"),
        DelegateLog.unsupportedOps(NEXT_OPERATIONS));
  }

  @Test
  public void blankReasonInTheMiddleDoesNotEndTheList() {
    assertEquals(
        Arrays.asList(
            "ARG_MAX",
            "CAST",
            "CONCATENATION",
            "DEQUANTIZE",
            "FLOOR_DIV",
            "GATHER_ND",
            "MUL",
            "PACK",
            "RESHAPE",
            "SUB",
            "UNPACK"),
        DelegateLog.unsupportedOps(TRAILING_SPACES));
  }

  @Test
  public void logcatPrefixesAndStudioContinuations() {
    assertEquals(Arrays.asList("UNPACK"), DelegateLog.unsupportedOps(THREADTIME));
    assertEquals(
        Arrays.asList("ADD", "CAST", "GATHER", "MUL", "STRIDED_SLICE", "UNPACK"),
        DelegateLog.unsupportedOps(ANDROID_STUDIO));
    assertFalse(DelegateLog.parse(ANDROID_STUDIO, "TfLiteGpuDelegate").found);
  }
}
