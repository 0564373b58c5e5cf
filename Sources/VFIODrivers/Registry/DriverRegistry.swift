import VFIOKit

/// The drivers a host (`vfiokit run`) can attach, in match order: a device gets the first
/// driver whose match table takes it, unless a driver is named for it. A new driver is one
/// more line here.
public enum DriverRegistry {
    public static let all: [any PCIDriver.Type] = [
        EduDriver.self,
        IMSQueueDriver.self,
        NVMeDriver.self,
        NVMeVerifyDriver.self,
        MSIXLoopbackDriver.self,
        StubDriver.self,
    ]

    /// The driver called `name`, if any.
    public static func named(_ name: String) -> (any PCIDriver.Type)? { all.first { $0.name == name } }

    /// The first driver whose match table takes a function with these IDs.
    public static func matching(_ identity: PCIDeviceIdentity) -> (any PCIDriver.Type)? {
        all.first { $0.supports(identity) }
    }

    /// Every driver's name, for messages.
    public static var names: String { all.map { $0.name }.joined(separator: ", ") }
}
