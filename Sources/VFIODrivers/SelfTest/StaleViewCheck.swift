import VFIOKit

/// The framework's lifetime guarantee, checked on any device: a register view kept past
/// `close()` reads all ones, its region reports itself closed, and a write through it reaches
/// no device: on a mapped view it lands in private memory (read back as written), on a trapped
/// one it fails (read back as all ones).
public enum StaleViewCheck {
    enum FirstRegister: RegisterLayout {
        static let extent = 4
        static var word: Register<Self, UInt32> { .init(0) }
    }

    /// The value written through the stale view: not all ones, so where it went shows.
    static let written: UInt32 = 0x5a5a_0000

    /// Takes a view of BAR 0's first register, closes `device`, then reads, writes and reads
    /// through the view.
    public static func run(closing device: PCIDevice) -> SelfTestStep {
        let view: MMIO<FirstRegister>
        do {
            view = try device.bar(0).mmio(FirstRegister.self)
        } catch {
            device.close()
            return SelfTestStep(name: "stale view", passed: nil, detail: "no BAR 0 register to keep a view of: \(error)")
        }
        device.close()
        let before = view.read(FirstRegister.word)
        view.write(FirstRegister.word, written)
        let after = view.read(FirstRegister.word)
        let liveness = view.region.liveness
        let kind = view.isMapped ? "mapped" : "trapped"
        let fate = view.isMapped ? "landed in private memory" : "failed"
        let expectedAfter = view.isMapped ? written : .max
        return SelfTestStep(
            name: "stale view", passed: before == .max && after == expectedAfter && liveness == .closed,
            detail: "after close, BAR 0 (\(kind)) read 0x\(String(before, radix: 16)); a write of "
                + "0x\(String(written, radix: 16)) through it \(fate) (read back 0x\(String(after, radix: 16))); "
                + "region \(liveness)")
    }
}
