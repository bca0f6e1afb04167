package dev.mobilize.bench.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.nio.charset.Charset;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class NpyTest {
  @Rule public TemporaryFolder folder = new TemporaryFolder();

  private static byte[] npyV1(String dict, byte[] data) {
    // numpy 1.x/2.x: header padded with spaces and ended by \n to a multiple of 64 bytes.
    int total = 10 + dict.length() + 1;
    StringBuilder header = new StringBuilder(dict);
    while ((total + header.length() - dict.length()) % 64 != 0) {
      header.append(' ');
    }
    header.append('\n');
    byte[] head = header.toString().getBytes(Charset.forName("ISO-8859-1"));
    byte[] bytes = new byte[10 + head.length + data.length];
    byte[] magic = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    System.arraycopy(magic, 0, bytes, 0, 8);
    bytes[8] = (byte) (head.length & 0xff);
    bytes[9] = (byte) (head.length >> 8);
    System.arraycopy(head, 0, bytes, 10, head.length);
    System.arraycopy(data, 0, bytes, 10 + head.length, data.length);
    return bytes;
  }

  @Test
  public void readsWhatNumpyWrites() throws IOException {
    byte[] data = {0, 0, (byte) 0x80, 0x3f, 0, 0, 0, (byte) 0xc0}; // 1.0f, -2.0f little-endian
    byte[] file = npyV1("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", data);
    NpyArray array = Npy.read(file, "x.npy");
    assertEquals("float32", array.dtype);
    assertArrayEquals(new int[] {1, 2}, array.shape);
    assertArrayEquals(new float[] {1.0f, -2.0f}, array.floats(), 0f);
  }

  @Test
  public void writesAHeaderPaddedTo64BytesAndReadsItBack() throws IOException {
    NpyArray array = NpyArray.ofFloats(new int[] {1, 2, 2, 1}, new float[] {0.5f, -1f, 2f, 3.25f});
    byte[] bytes = Npy.toBytes(array);
    int headerLength = (bytes[8] & 0xff) | (bytes[9] & 0xff) << 8;
    assertEquals(0, (10 + headerLength) % 64);
    assertEquals('\n', bytes[10 + headerLength - 1]);
    File file = folder.newFile("out.npy");
    Npy.write(file, array);
    NpyArray back = Npy.read(file);
    assertArrayEquals(array.shape, back.shape);
    assertArrayEquals(array.floats(), back.floats(), 0f);
  }

  @Test
  public void oneDimensionalShapeKeepsItsComma() throws IOException {
    NpyArray array = new NpyArray("int8", new int[] {3}, new byte[] {1, -2, 3});
    String header = new String(Npy.toBytes(array), Charset.forName("ISO-8859-1"));
    assertTrue(header, header.contains("'descr': '|i1'") && header.contains("'shape': (3,)"));
    assertArrayEquals(new byte[] {1, -2, 3}, Npy.read(Npy.toBytes(array), "a").data());
  }

  @Test
  public void readsVersion2Headers() throws IOException {
    byte[] v1 = npyV1("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", new byte[] {7, 9});
    byte[] v2 = new byte[v1.length + 2];
    System.arraycopy(v1, 0, v2, 0, 8);
    v2[6] = 2;
    v2[8] = v1[8];
    v2[9] = v1[9];
    System.arraycopy(v1, 10, v2, 12, v1.length - 10);
    NpyArray array = Npy.read(v2, "v2.npy");
    assertEquals("uint8", array.dtype);
    assertArrayEquals(new byte[] {7, 9}, array.data());
  }

  @Test
  public void refusesWhatItCannotRead() {
    String[][] cases = {
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "unsupported .npy dtype '>f4'"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", "Fortran order"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "shape and dtype need 8"},
    };
    for (String[] c : cases) {
      try {
        Npy.read(npyV1(c[0], new byte[4]), "bad.npy");
        fail("read " + c[0]);
      } catch (IOException e) {
        assertTrue(e.getMessage(), e.getMessage().contains(c[1]));
      }
    }
    try {
      Npy.read("not numpy at all".getBytes(Charset.forName("UTF-8")), "t.npy");
      fail("read text");
    } catch (IOException e) {
      assertTrue(e.getMessage().contains("bad magic"));
    }
  }
}
