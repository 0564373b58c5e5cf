import CUring
import Testing
@testable import VFIOExport

/// The kernel interface's layouts and numbers, checked against include/uapi/linux/ublk_cmd.h.
@Suite("ublk uapi: layouts, command numbers, descriptor areas")
struct UblkInterfaceTests {
    @Test("structure sizes and field offsets")
    func layouts() {
        #expect(MemoryLayout<cublk_ctrl_cmd>.size == 32)
        #expect(MemoryLayout<cublk_ctrl_cmd>.offset(of: \.addr) == 8)
        #expect(MemoryLayout<cublk_ctrl_cmd>.offset(of: \.data) == 16)
        #expect(MemoryLayout<cublk_dev_info>.size == 64)
        #expect(MemoryLayout<cublk_dev_info>.offset(of: \.max_io_buf_bytes) == 8)
        #expect(MemoryLayout<cublk_dev_info>.offset(of: \.flags) == 24)
        #expect(MemoryLayout<cublk_io_desc>.size == 24)
        #expect(MemoryLayout<cublk_io_desc>.offset(of: \.start_sector) == 8)
        #expect(MemoryLayout<cublk_io_cmd>.size == 16)
        #expect(MemoryLayout<cublk_io_cmd>.offset(of: \.result) == 4)
        #expect(MemoryLayout<cublk_params>.offset(of: \.basic) == 8)
        #expect(MemoryLayout<cublk_params>.offset(of: \.discard) == 40)
        #expect(MemoryLayout<cublk_param_basic>.offset(of: \.dev_sectors) == 16)
    }

    @Test("ioctl-encoded command numbers")
    func numbers() {
        #expect(CUBLK_U_CMD_ADD_DEV == 0xc020_7504)
        #expect(CUBLK_U_CMD_START_DEV == 0xc020_7506)
        #expect(CUBLK_U_CMD_DEL_DEV == 0xc020_7505)
        #expect(CUBLK_U_CMD_GET_FEATURES == 0x8020_7513)
        #expect(CUBLK_U_IO_FETCH_REQ == 0xc010_7520)
        #expect(CUBLK_U_IO_COMMIT_AND_FETCH_REQ == 0xc010_7521)
    }

    @Test("each queue's descriptors start at a stride sized for 4,096 tags, and map whole pages")
    func descriptorAreas() {
        #expect(cublk_descriptor_offset(0) == 0)
        #expect(cublk_descriptor_offset(1) == 98304)
        #expect(cublk_descriptor_offset(3) == 3 * 98304)
        #expect(cublk_descriptor_length(1) == 4096)
        #expect(cublk_descriptor_length(170) == 4096)
        #expect(cublk_descriptor_length(171) == 8192)
        #expect(cublk_descriptor_length(4096) == 98304)
    }

    @Test("no ublk_drv: a clear error naming the module to load")
    func missingControl() {
        #expect { try UblkControl(path: "/nonexistent/ublk-control") } throws: { error in
            guard let e = error as? UblkError, e == .controlDeviceMissing(path: "/nonexistent/ublk-control") else { return false }
            return "\(e)".contains("modprobe ublk_drv") && "\(e)".contains("/nonexistent/ublk-control")
        }
    }
}
