import Logging

extension Logger {
    /// The logger the framework uses unless given one: it prints nothing, so a library that
    /// nobody configures stays quiet. Pass your own `Logger` to ``IOMMUContext`` (and
    /// ``EventLoop``) to see backend choices, fallbacks, MSI-X growth and IOMMU faults.
    public static let vfiokitSilent = Logger(label: "vfiokit", factory: { _ in SwiftLogNoOpLogHandler() })
}
