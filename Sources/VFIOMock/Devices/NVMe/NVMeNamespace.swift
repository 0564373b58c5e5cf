#if canImport(Glibc)
import Glibc
#endif
import CVFIO

/// The storage behind one namespace of a simulated ``NVMeController``: anonymous memory, or an
/// image file mapped shared so that what the controller writes lands in the file (and a later
/// run, or another process, sees it).
///
/// The bytes are guarded by a lock (a pthread mutex, which ThreadSanitizer sees), so tests may
/// read and write them while the controller runs.
public final class NVMeNamespace: @unchecked Sendable {
    /// Why an image could not back a namespace; each case names the path.
    public enum StorageError: Error, CustomStringConvertible {
        /// The image could not be opened, or created at `createSize`; `errno` says why.
        case cannotOpen(path: String, errno: Int32)
        /// The image is empty or not a whole number of `blockSize`-byte blocks.
        case badSize(path: String, size: Int, blockSize: Int)
        /// mmap(2) of the image failed; `errno` says why.
        case cannotMap(path: String, errno: Int32)

        /// What failed, with the path and the system's reason or the sizes involved.
        public var description: String {
            switch self {
            case let .cannotOpen(path, e): "cannot open NVMe image \(path): \(String(cString: strerror(e)))"
            case let .badSize(path, size, blockSize):
                "NVMe image \(path) is \(size) bytes: it must be a non-zero multiple of the \(blockSize)-byte block size"
            case let .cannotMap(path, e): "cannot map NVMe image \(path): \(String(cString: strerror(e)))"
            }
        }
    }

    /// Bytes per logical block: 512 or 4096.
    public let blockSize: Int
    /// Size in logical blocks (NSZE = NCAP = NUSE).
    public let blockCount: UInt64
    /// Metadata bytes per block of the format in use (LBA format 1, separate buffer); 0 for
    /// none (format 0). This controller keeps no metadata: it answers I/O to a namespace
    /// formatted with metadata with Invalid Field in Command.
    public let metadataSize: Int
    private let bytes: UnsafeMutableRawBufferPointer
    private let lock = KernelLock()
    private let file: Int32?
    private var commitCount = 0

    /// A namespace of `blockCount` zeroed blocks in memory, formatted with `metadataSize` bytes
    /// of metadata per block (LBA format 1) or none (format 0).
    public init(blockCount: UInt64, blockSize: Int = 512, metadataSize: Int = 0) {
        precondition(blockSize == 512 || blockSize == 4096, "block size must be 512 or 4096")
        precondition(metadataSize >= 0 && metadataSize <= 0xffff, "metadata size out of range")
        self.metadataSize = metadataSize
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(blockCount) * blockSize, alignment: 4096)
        memory.initializeMemory(as: UInt8.self, repeating: 0)
        self.blockSize = blockSize
        self.blockCount = blockCount
        bytes = memory
        file = nil
    }

    /// A namespace backed by the image at `path`, which must exist and be a non-zero whole
    /// number of blocks; with `createSize`, an absent or empty image is made that many bytes.
    /// An image is never grown or created otherwise.
    public init(imageAt path: String, blockSize: Int = 512, createSize: Int? = nil) throws(StorageError) {
        precondition(blockSize == 512 || blockSize == 4096, "block size must be 512 or 4096")
        let fd = open(path, O_RDWR | O_CLOEXEC | (createSize == nil ? 0 : O_CREAT), 0o644)
        guard fd >= 0 else { throw .cannotOpen(path: path, errno: errno) }
        var info = stat()
        fstat(fd, &info)
        var size = Int(info.st_size)
        if size == 0, let createSize {
            guard ftruncate(fd, off_t(createSize)) == 0 else { close(fd); throw .cannotOpen(path: path, errno: errno) }
            size = createSize
        }
        guard size > 0, size % blockSize == 0 else { close(fd); throw .badSize(path: path, size: size, blockSize: blockSize) }
        metadataSize = 0
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            close(fd)
            throw .cannotMap(path: path, errno: errno)
        }
        self.blockSize = blockSize
        blockCount = UInt64(size / blockSize)
        bytes = UnsafeMutableRawBufferPointer(start: p, count: size)
        file = fd
    }

    deinit {
        if let file {
            munmap(bytes.baseAddress, bytes.count)
            close(file)
        } else {
            bytes.deallocate()
        }
    }

    /// Runs `body` on the blocks `lba ..< lba + count`; the caller has checked the range.
    func withBlocks<T>(_ lba: UInt64, count: Int, _ body: (UnsafeMutableRawBufferPointer) -> T) -> T {
        lock.withLock {
            let start = Int(lba) * blockSize
            return body(UnsafeMutableRawBufferPointer(rebasing: bytes[start..<start + count * blockSize]))
        }
    }

    /// A copy of `count` blocks at `lba`, for tests and tools.
    public func read(lba: UInt64, count: Int) -> [UInt8] {
        precondition(lba + UInt64(count) <= blockCount, "read beyond the namespace")
        return withBlocks(lba, count: count) { Array($0) }
    }

    /// Overwrites blocks from `lba` with `data` (a whole number of blocks), for tests and tools.
    public func write(lba: UInt64, _ data: [UInt8]) {
        precondition(data.count % blockSize == 0 && lba + UInt64(data.count / blockSize) <= blockCount, "write beyond the namespace")
        data.withUnsafeBytes { source in withBlocks(lba, count: data.count / blockSize) { $0.copyMemory(from: source) } }
    }

    /// Makes written data durable (msync for an image; nothing for memory).
    func flush() {
        lock.withLock {
            commitCount += 1
            if file != nil { _ = msync(bytes.baseAddress, bytes.count, MS_SYNC) }
        }
    }

    /// Makes blocks `lba ..< lba + count` durable (msync of the pages holding them, for an
    /// image); the caller has checked the range.
    func commit(lba: UInt64, count: Int) {
        lock.withLock {
            commitCount += 1
            guard file != nil else { return }
            let start = Int(lba) * blockSize & ~(Int(getpagesize()) - 1)
            _ = msync(bytes.baseAddress! + start, Int(lba) * blockSize + count * blockSize - start, MS_SYNC)
        }
    }

    /// Deallocates blocks `lba ..< lba + count`, which then read as zeroes: an image gets a
    /// hole punched (its file keeps its size and gives the space back); memory is zeroed, as
    /// is an image on a file system that cannot punch holes. The caller has checked the range.
    func deallocate(lba: UInt64, count: Int) {
        lock.withLock {
            let start = Int(lba) * blockSize, length = count * blockSize
            if let file, cvfio_punch_hole(file, Int64(start), Int64(length)) == 0 { return }
            (bytes.baseAddress! + start).initializeMemory(as: UInt8.self, repeating: 0, count: length)
        }
    }

    /// How many times the controller committed this namespace's data to media (a Flush, a
    /// FUA write, or a write on a controller without a volatile write cache).
    public var commits: Int { lock.withLock { commitCount } }

    /// Bytes of the image the file system holds (st_blocks), which a deallocation lowers;
    /// nil for a namespace in memory.
    public var allocatedBytes: Int? {
        guard let file else { return nil }
        var info = stat()
        return fstat(file, &info) == 0 ? Int(info.st_blocks) * 512 : nil
    }
}
