package dev.mobilize.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class PlatformFiguresTest {
  @Rule public TemporaryFolder folder = new TemporaryFolder();

  @Test
  public void readsVmHwmAndVmRssFromProcStatus() {
    String status = "Name:\tbench\nVmPeak:\t 999 kB\nVmHWM:\t  181234 kB\nVmRSS:\t 170000 kB\n";
    MemorySnapshot memory = MemorySnapshot.fromProcStatus(status, 95000.0, null);
    assertEquals(181234.0, memory.peakRssKb, 0.0);
    assertEquals(170000.0, memory.rssKb, 0.0);
    assertEquals(95000.0, memory.pssKb, 0.0);
    assertNull(memory.nativeHeapKb);
    assertNull(MemorySnapshot.procStatusKb(status, "VmSwap"));
  }

  @Test
  public void thermalLabelsFollowPowerManager() {
    assertEquals("none", ThermalStatus.label(0));
    assertEquals("severe", ThermalStatus.label(3));
    assertEquals("shutdown", ThermalStatus.label(6));
    assertNull(ThermalStatus.label(7));
    assertNull(ThermalStatus.label(-1));
  }

  @Test
  public void atomicWriteReplacesAndLeavesNoTemporary() throws IOException {
    File target = new File(folder.getRoot(), "results/run.json");
    AtomicFiles.writeText(target, "{\"a\": 1}\n");
    AtomicFiles.writeText(target, "{\"a\": 2}\n");
    assertEquals("{\"a\": 2}\n", new String(Files.readAllBytes(target.toPath()), "UTF-8"));
    String[] names = target.getParentFile().list();
    assertEquals(1, names.length);
    assertFalse(new File(target.getParentFile(), ".run.json.tmp").exists());
  }

  @Test
  public void isoTimesAreUtcWithMilliseconds() {
    String now = TestPlatform.create(new FakeTicker()).isoNow();
    assertTrue(now, now.matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z"));
  }
}
