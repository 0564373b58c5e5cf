import ArgumentParser
import CLIOutput
import Foundation
import VFIODaemon
import VFIODrivers
import VFIOKit

/// `vfiokit nvme read ADDRESS --lba L --blocks N [--namespace 1] [--output FILE]`.
struct NVMeReadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read", abstract: "Read blocks to a file (or standard output).")

    @OptionGroup var target: NVMeTarget
    @OptionGroup var range: NVMeBlockRangeOptions
    @Option(help: "Where the data goes (default: standard output).") var output: String?

    func run() async throws {
        let (lba, blocks, namespace) = try range.checked()
        let session = try target.open(NVMeDriver.Configuration())
        defer { session.close() }
        let ns = try session.namespace(namespace)
        var data = Data(capacity: blocks * ns.blockSize)
        try await transferInChunks(session, ns, lba: lba, blocks: blocks) { driver, lba, count, range, bytes in
            try await driver.read(namespace: ns.id, lba: lba, blocks: count, into: range)
            data.append(contentsOf: UnsafeRawBufferPointer(bytes))
        }
        if let output {
            do { try data.write(to: URL(fileURLWithPath: output)) } catch {
                throw ValidationError("cannot write \(output): \(error.localizedDescription)")
            }
            printError("read \(blocks) blocks (\(data.count) bytes) from LBA \(lba) of namespace \(ns.id) into \(output)")
        } else {
            FileHandle.standardOutput.write(data)
        }
    }
}

/// `vfiokit nvme write ADDRESS --lba L [--namespace 1] [--input FILE]`.
struct NVMeWriteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write", abstract: "Write a file (or standard input) at a block, zero-padded to whole blocks.")

    @OptionGroup var target: NVMeTarget
    @Option(parsing: .unconditional, help: "The first logical block.", transform: parseLBA) var lba: UInt64
    @Option(help: "The namespace id.") var namespace: UInt32 = 1
    @Option(help: "The data to write (default: standard input).") var input: String?

    func run() async throws {
        let data: Data
        if let input {
            data = try DaemonError.readFile(input)
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        guard !data.isEmpty else { throw ValidationError("nothing to write: the input is empty") }
        let session = try target.open(NVMeDriver.Configuration())
        defer { session.close() }
        let ns = try session.namespace(namespace)
        let blocks = (data.count + ns.blockSize - 1) / ns.blockSize
        var done = 0
        try await transferInChunks(session, ns, lba: lba, blocks: blocks) { driver, lba, count, range, bytes in
            bytes.initializeMemory(as: UInt8.self, repeating: 0)
            let n = min(bytes.count, data.count - done)
            data.withUnsafeBytes { source in
                bytes.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[done..<done + n]))
            }
            try await driver.write(namespace: ns.id, lba: lba, blocks: count, from: range)
            done += bytes.count
        }
        try await session.driver.flush(namespace: ns.id)
        printError(
            "wrote \(blocks) blocks (\(data.count) bytes\(data.count % ns.blockSize == 0 ? "" : ", zero-padded")) at LBA \(lba) of namespace \(ns.id)"
        )
    }
}

/// Runs `body` over `blocks` blocks from `lba` in pieces of at most one command's transfer,
/// each in the same DMA buffer (its range for the device, its bytes for the CPU); checks the
/// range first.
func transferInChunks(
    _ session: NVMeSession, _ ns: NVMeNamespaceIdentity, lba: UInt64, blocks: Int,
    _ body: (NVMeDriver, UInt64, Int, NVMeDataRange, UnsafeMutableRawBufferPointer) async throws -> Void
) async throws {
    guard lba < ns.size, ns.size - lba >= UInt64(blocks) else {
        throw ValidationError("LBA \(lba) + \(blocks) blocks is beyond namespace \(ns.id), which has \(ns.size) blocks")
    }
    let perCommand = max(1, min(session.driver.maxTransfer / ns.blockSize, 65536))
    let buffer = try session.device.dma.allocate(min(blocks, perCommand) * ns.blockSize)
    var at = lba
    var left = blocks
    while left > 0 {
        let count = min(left, perCommand)
        let bytes = count * ns.blockSize
        try await body(
            session.driver, at, count, NVMeDataRange(deviceAddress: buffer.deviceAddress, count: bytes),
            UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<bytes]))
        at += UInt64(count)
        left -= count
    }
}

/// `--lba L --blocks N [--namespace 1]`: the blocks a command works on.
struct NVMeBlockRangeOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "The first logical block.", transform: parseLBA) var lba: UInt64
    @Option(help: "How many logical blocks.") var blocks: Int
    @Option(help: "The namespace id.") var namespace: UInt32 = 1

    /// The three, once `--blocks` is at least 1.
    func checked() throws -> (lba: UInt64, blocks: Int, namespace: UInt32) {
        guard blocks >= 1 else { throw ValidationError("--blocks must be at least 1") }
        return (lba, blocks, namespace)
    }
}

/// `--lba`: taken whatever it looks like (so `-1` reaches here rather than reading as an option) and refused unless it is a block number.
func parseLBA(_ text: String) throws -> UInt64 {
    guard let lba = UInt64(text) else { throw ValidationError("LBA must be a non-negative integer, not \"\(text)\"") }
    return lba
}
