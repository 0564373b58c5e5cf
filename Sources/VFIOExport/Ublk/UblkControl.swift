#if canImport(Glibc)
import Glibc
#endif
import CUring

/// `/dev/ublk-control`: the commands that add, describe, start, stop and delete ublk devices,
/// each one 128-byte URING_CMD on a small ring, waited for. Commands are ioctl-encoded when the
/// kernel says it takes them (GET_FEATURES, Linux 6.5+), and the old plain numbers otherwise.
/// Not thread-safe: one thread issues control commands at a time.
public final class UblkControl {
    public static let defaultPath = "/dev/ublk-control"

    private let fd: Int32
    private let ring: UblkRing
    /// The feature flags the kernel's driver reports (UBLK_F_*), or 0 before GET_FEATURES existed.
    public let features: UInt64
    /// Whether commands are sent ioctl-encoded.
    public var ioctlEncoded: Bool { features & CUBLK_F_CMD_IOCTL_ENCODE != 0 }

    /// Opens `path`. Throws ``UblkError/controlDeviceMissing(path:)`` when it does not exist.
    public init(path: String = UblkControl.defaultPath) throws(UblkError) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT || e == ENXIO || e == ENODEV { throw .controlDeviceMissing(path: path) }
            throw .system(operation: "opening \(path)", errno: e)
        }
        let ring: UblkRing
        do {
            ring = try UblkRing(entries: 4, flags: CURING_SETUP_SQE128, purpose: "ublk control commands")
        } catch {
            close(fd)
            throw error
        }
        self.ring = ring
        self.fd = fd
        var features: UInt64 = 0
        var header = cublk_ctrl_cmd()
        header.dev_id = .max
        header.queue_id = .max
        let rc = withUnsafeMutablePointer(to: &features) { p in
            header.addr = UInt64(UInt(bitPattern: p))
            header.len = 8
            return Self.issue(ring, fd, CUBLK_U_CMD_GET_FEATURES, &header)
        }
        self.features = rc == 0 ? features : 0
    }

    deinit { close(fd) }

    /// Adds a device described by `info` (dev_id `UInt32.max`: the kernel picks the number);
    /// returns the info the kernel settled on (its number, queues, and the flags it granted).
    public func addDevice(_ info: cublk_dev_info) throws(UblkError) -> cublk_dev_info {
        var info = info
        try withUnsafeMutablePointer(to: &info) { (p) throws(UblkError) in
            try command(
                "ADD_DEV", CUBLK_CMD_ADD_DEV, CUBLK_U_CMD_ADD_DEV, device: p.pointee.dev_id, buffer: UnsafeMutableRawPointer(p),
                length: MemoryLayout<cublk_dev_info>.size)
        }
        return info
    }

    /// Sets device `id`'s parameters (before START_DEV).
    public func setParameters(_ id: UInt32, _ parameters: cublk_params) throws(UblkError) {
        var parameters = parameters
        try withUnsafeMutablePointer(to: &parameters) { (p) throws(UblkError) in
            try command(
                "SET_PARAMS", CUBLK_CMD_SET_PARAMS, CUBLK_U_CMD_SET_PARAMS, device: id, buffer: UnsafeMutableRawPointer(p),
                length: MemoryLayout<cublk_params>.size)
        }
    }

    /// Starts device `id`: /dev/ublkbN appears. The kernel waits until every tag of every queue
    /// has fetched, so each queue must have fetched first.
    public func start(_ id: UInt32) throws(UblkError) {
        try command("START_DEV", CUBLK_CMD_START_DEV, CUBLK_U_CMD_START_DEV, device: id, data: UInt64(getpid()))
    }

    /// Stops device `id`: the block device goes away once its in-flight requests finish, and
    /// every tag's fetch completes with an abort.
    public func stop(_ id: UInt32) throws(UblkError) {
        try command("STOP_DEV", CUBLK_CMD_STOP_DEV, CUBLK_U_CMD_STOP_DEV, device: id)
    }

    /// Deletes device `id`, waiting until its number is free (its char device must be closed).
    public func delete(_ id: UInt32) throws(UblkError) {
        try command("DEL_DEV", CUBLK_CMD_DEL_DEV, CUBLK_U_CMD_DEL_DEV, device: id)
    }

    /// Device `id`'s info, as the kernel holds it (its state, server pid).
    public func deviceInfo(_ id: UInt32) throws(UblkError) -> cublk_dev_info {
        var info = cublk_dev_info()
        try withUnsafeMutablePointer(to: &info) { (p) throws(UblkError) in
            try command(
                "GET_DEV_INFO", CUBLK_CMD_GET_DEV_INFO, CUBLK_U_CMD_GET_DEV_INFO, device: id, buffer: UnsafeMutableRawPointer(p),
                length: MemoryLayout<cublk_dev_info>.size)
        }
        return info
    }

    private func command(
        _ name: String, _ legacy: UInt32, _ encoded: UInt32, device id: UInt32,
        buffer: UnsafeMutableRawPointer? = nil, length: Int = 0, data: UInt64 = 0
    ) throws(UblkError) {
        var header = cublk_ctrl_cmd()
        header.dev_id = id
        header.queue_id = .max
        header.len = UInt16(length)
        header.addr = buffer.map { UInt64(UInt(bitPattern: $0)) } ?? 0
        header.data.0 = data
        let op = ioctlEncoded ? encoded : legacy
        let rc = Self.issue(ring, fd, op, &header)
        guard rc == 0 else { throw .command(name: name, deviceID: id == .max ? nil : id, errno: -rc) }
    }

    /// Submits one control command and waits for its result (0 or -errno), retrying a wait a
    /// signal interrupted.
    private static func issue(_ ring: UblkRing, _ fd: Int32, _ op: UInt32, _ header: inout cublk_ctrl_cmd) -> Int32 {
        guard curing_prep_ublk_ctrl(ring.ring, fd, op, &header, 0) == 0 else { return -EBUSY }
        var rc = ring.submitAndWait()
        while rc == -EINTR { rc = ring.submitAndWait() }
        guard rc == 0, let completion = ring.peek() else { return rc == 0 ? -EIO : rc }
        return completion.result
    }
}
