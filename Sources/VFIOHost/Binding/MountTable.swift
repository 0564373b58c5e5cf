/// The mounts listed in `/proc/self/mountinfo`, by the device number each is on.
public struct MountTable: Equatable, Sendable {
    public struct Mount: Equatable, Sendable {
        /// `major:minor` of the filesystem's device, as in sysfs's block `dev` files.
        public let deviceNumber: String
        public let mountPoint: String
    }

    public let mounts: [Mount]

    /// Parses mountinfo (proc(5)): field 3 is `major:minor`, field 5 the mount point with
    /// space, tab, newline and backslash written as octal escapes. Lines too short to hold
    /// those fields are skipped.
    public init(mountInfo text: String) {
        mounts = text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 5 else { return nil }
            return Mount(deviceNumber: String(fields[2]), mountPoint: Self.unescape(fields[4]))
        }
    }

    /// The mounts on a device number.
    public func mounts(on deviceNumber: String) -> [Mount] { mounts.filter { $0.deviceNumber == deviceNumber } }

    private static func unescape(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        var rest = field.utf8[...]
        while let byte = rest.popFirst() {
            let digits = rest.prefix(3)
            if byte == UInt8(ascii: "\\"), digits.count == 3, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x37 }),
                let value = UInt8(String(decoding: digits, as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                rest = rest.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
