import Foundation
import Synchronization
import SystemPackage
import VFIOKit
import VFIOMock

/// The real system calls on a fake host tree, plus a model of how the kernel reacts to the
/// sysfs writes that bind and unbind drivers — which plain files in a temporary directory
/// cannot do. Only writes are intercepted; everything else reaches the real files.
///
/// The rules are VFIOMock's ``DriverCore``, the ones `MockKernel`'s sysfs follows: this type
/// only reads the device's state from the tree and writes the outcome back as links.
final class FakeKernel: SystemCalls {
    /// A driver's ID table.
    typealias Matcher = @Sendable (_ vendor: UInt16, _ device: UInt16, _ classCode: UInt32) -> Bool

    private struct State {
        var writers: [Int32: String] = [:]
        var drivers: [String: Matcher] = [:]
        var failingProbes: Set<String> = []
        var log: [String] = []
    }

    private let state = Mutex(State())
    private let host = HostSystemCalls.shared
    /// The tree's root with symlinks resolved, so written paths can be matched against it.
    let root: String

    init(root: String) {
        self.root = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
    }

    /// Registers a driver the model can bind; its sysfs directory is the fixture's business.
    func register(driver: String, matches: @escaping Matcher) {
        state.withLock { $0.drivers[driver] = matches }
    }

    /// Makes the named driver's probe fail, as a driver that rejects the device would.
    func failProbes(of driver: String) { state.withLock { _ = $0.failingProbes.insert(driver) } }

    /// The writes the model has seen, as `relative/path=value`, in order.
    var log: [String] { state.withLock { $0.log } }

    // MARK: Interception

    func open(_ path: String, _ flags: Int32) throws(Errno) -> FileDescriptor {
        let fd = try host.open(path, flags)
        if flags & O_ACCMODE != O_RDONLY {
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            state.withLock { $0.writers[fd.rawValue] = resolved }
        }
        return fd
    }

    func close(_ fd: FileDescriptor) throws(Errno) {
        state.withLock { _ = $0.writers.removeValue(forKey: fd.rawValue) }
        try host.close(fd)
    }

    func write(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        guard let path = state.withLock({ $0.writers[fd.rawValue] }), path.hasPrefix(root + "/") else {
            return try host.write(fd, from: buffer)
        }
        let relative = String(path.dropFirst(root.count + 1))
        let value = String(decoding: buffer, as: UTF8.self)
        state.withLock { $0.log.append("\(relative)=\(value)") }
        try react(to: relative, value: value.trimmingCharacters(in: .newlines))
        return buffer.count
    }

    private func react(to path: String, value: String) throws(Errno) {
        let parts = path.split(separator: "/").map(String.init)
        if parts.last == "driver_override" {
            let directory = parts.dropLast().joined(separator: "/")
            write(file: directory + "/driver_override", DriverCore.overrideText(DriverCore.override(written: value)))
        } else if path == "sys/bus/pci/drivers_probe" {
            try probe(value)
        } else if parts.count == 6, parts.starts(with: ["sys", "bus", "pci", "drivers"]) {
            switch parts[5] {
            case "bind": try bind(value, to: parts[4])
            case "unbind": try unbind(value, from: parts[4])
            default: throw .permissionDenied
            }
        } else {
            throw .permissionDenied
        }
    }

    private func probe(_ address: String) throws(Errno) {
        guard let device = deviceDirectory(address) else { throw .operationNotSupportedByDevice }
        let (drivers, failing) = state.withLock { ($0.drivers, $0.failingProbes) }
        if let driver = DriverCore.probe(coreView(device), drivers: drivers.keys.sorted(), probeFails: failing.contains) {
            attach(device, address: address, to: driver)
        }
    }

    private func bind(_ address: String, to driver: String) throws(Errno) {
        guard let device = deviceDirectory(address) else { throw .operationNotSupportedByDevice }
        try DriverCore.bind(driver, coreView(device), probeFails: state.withLock { $0.failingProbes.contains(driver) })
        attach(device, address: address, to: driver)
    }

    private func unbind(_ address: String, from driver: String) throws(Errno) {
        guard let device = deviceDirectory(address) else { throw .operationNotSupportedByDevice }
        try DriverCore.unbind(driver, coreView(device))
        try? FileManager.default.removeItem(atPath: "\(root)/\(device)/driver")
        try? FileManager.default.removeItem(atPath: "\(root)/sys/bus/pci/drivers/\(driver)/\(address)")
    }

    /// The device as the driver core's rules see it: its driver link, its override file, and
    /// the registered ID tables against its vendor, device and class files.
    private func coreView(_ device: String) -> DriverCore.Device {
        let override = read(file: device + "/driver_override")
        let ids = (UInt16(hex: read(file: device + "/vendor")), UInt16(hex: read(file: device + "/device")), UInt32(hex: read(file: device + "/class")))
        let tables = state.withLock { $0.drivers }
        return DriverCore.Device(bound: boundDriver(device), override: override == "(null)" ? nil : override) { driver in
            tables[driver].map { $0(ids.0, ids.1, ids.2) } ?? false
        }
    }

    private func attach(_ device: String, address: String, to driver: String) {
        FakeHost.link("\(root)/\(device)/driver", to: "sys/bus/pci/drivers/\(driver)", from: device)
        FakeHost.link("\(root)/sys/bus/pci/drivers/\(driver)/\(address)", to: device, from: "sys/bus/pci/drivers/\(driver)")
    }

    /// The device's real directory relative to the root, if the device exists.
    private func deviceDirectory(_ address: String) -> String? {
        let link = "\(root)/sys/bus/pci/devices/\(address)"
        guard !address.contains("/"), FileManager.default.fileExists(atPath: link) else { return nil }
        let resolved = URL(fileURLWithPath: link).resolvingSymlinksInPath().path
        return String(resolved.dropFirst(root.count + 1))
    }

    private func boundDriver(_ device: String) -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(root)/\(device)/driver"))
            .map { URL(fileURLWithPath: $0).lastPathComponent }
    }

    private func read(file: String) -> String {
        ((try? String(contentsOfFile: "\(root)/\(file)", encoding: .utf8)) ?? "").trimmingCharacters(in: .newlines)
    }

    private func write(file: String, _ value: String) {
        _ = FileManager.default.createFile(atPath: "\(root)/\(file)", contents: Data((value + "\n").utf8))
    }

    // MARK: Pass-through

    func ioctl(_ fd: FileDescriptor, _ request: UInt, _ argument: UInt) throws(Errno) -> Int32 {
        try host.ioctl(fd, request, argument)
    }
    func mmap(length: Int, protection: Int32, flags: Int32, fd: FileDescriptor?, offset: Int64) throws(Errno)
        -> UnsafeMutableRawPointer
    { try host.mmap(length: length, protection: protection, flags: flags, fd: fd, offset: offset) }
    func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) { try host.munmap(address, length: length) }
    func retireMapping(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) {
        try host.retireMapping(address, length: length)
    }
    func pread(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try host.pread(fd, into: buffer, at: offset)
    }
    func pwrite(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try host.pwrite(fd, from: buffer, at: offset)
    }
    func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try host.read(fd, into: buffer)
    }
    func eventfd(initialValue: UInt32, flags: Int32) throws(Errno) -> FileDescriptor {
        try host.eventfd(initialValue: initialValue, flags: flags)
    }
    func memoryFile(name: String, size: Int, flags: UInt32) throws(Errno) -> FileDescriptor {
        try host.memoryFile(name: name, size: size, flags: flags)
    }
    func periodicTimer(interval: Duration) throws(Errno) -> FileDescriptor { try host.periodicTimer(interval: interval) }
    func epollCreate() throws(Errno) -> FileDescriptor { try host.epollCreate() }
    func epollControl(_ epoll: FileDescriptor, _ operation: Int32, _ fd: FileDescriptor, events: UInt32, data: UInt64)
        throws(Errno)
    { try host.epollControl(epoll, operation, fd, events: events, data: data) }
    func epollWait(
        _ epoll: FileDescriptor, events: UnsafeMutablePointer<UInt32>, data: UnsafeMutablePointer<UInt64>,
        capacity: Int32, timeoutMilliseconds: Int32
    ) throws(Errno) -> Int {
        try host.epollWait(epoll, events: events, data: data, capacity: capacity, timeoutMilliseconds: timeoutMilliseconds)
    }
    func readLink(_ path: String) throws(Errno) -> String { try host.readLink(path) }
    func listDirectory(_ path: String) throws(Errno) -> [String] { try host.listDirectory(path) }
}

extension FixedWidthInteger {
    /// Parses sysfs's `0x…` form; 0 for anything else (the fixture writes only valid values).
    init(hex text: String) {
        self = Self(text.hasPrefix("0x") ? String(text.dropFirst(2)) : text, radix: 16) ?? 0
    }
}
