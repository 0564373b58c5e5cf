extension ConfigSpaceReport {
    /// The device as text: an identity line, then one line per BAR, capability and problem.
    ///
    /// ```
    /// 0000:6a:01.0 8086:0b25 rev 00, class 0880.00 (Generic system peripheral), header 00 (endpoint), 4096 config bytes
    ///   cap  0x080 [0x11] MSI-X: enabled, 9 vectors, table at BAR0+0x2000, PBA at BAR0+0x3000
    ///   ecap 0x230 [0x001b v1] PASID: enabled, 20-bit PASIDs, privileged
    /// ```
    public var text: String {
        func hex<T: BinaryInteger>(_ value: T?, _ width: Int) -> String {
            value.map { hexString($0, width: width) } ?? String(repeating: "?", count: width)
        }
        let headerText = headerRegister?.description ?? "??"
        let classText = classCode.map { "\($0)" + (className.map { " (\($0))" } ?? "") } ?? "????.??"
        var lines = [
            "\(address) \(hex(vendorID, 4)):\(hex(deviceID, 4)) rev \(hex(revisionID, 2)), class \(classText), "
                + "header \(headerText), \(configSize) config bytes"
        ]
        if let title { lines.append("  title: \(title)") }
        if let subsystem {
            lines.append("  subsystem: \(hexString(subsystem.vendorID, width: 4)):\(hexString(subsystem.deviceID, width: 4))")
        }
        lines += bars.map { "  \($0)" }
        for cap in capabilities {
            let tag =
                switch cap.chain {
                case .standard: "  cap  0x\(hexString(cap.offset, width: 3)) [0x\(hexString(cap.id, width: 2))]"
                case .extended: "  ecap 0x\(hexString(cap.offset, width: 3)) [0x\(hexString(cap.id, width: 4)) v\(cap.version ?? 0)]"
                }
            if let decoded = cap.decoded {
                lines.append("\(tag) \(decoded)")
            } else if let error = cap.decodeError {
                lines.append("\(tag) \(cap.name): cannot decode: \(error)")
            } else {
                lines.append("\(tag) \(cap.name)")
            }
        }
        lines += problems.map { "  problem: \($0)" }
        return lines.joined(separator: "\n")
    }

    /// The header-type register, rebuilt from the reported type and multi-function bit.
    private var headerRegister: HeaderType? {
        headerType.map { HeaderType(rawValue: $0 | (isMultiFunction == true ? 0x80 : 0)) }
    }
}
