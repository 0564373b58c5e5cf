import VFIOKit

/// The framework's lifetime guarantee, checked on any device: a register view kept past
/// `close()` reads all ones, and a write through it is dropped (it reads all ones after).
public enum StaleViewCheck {
    enum FirstRegister: RegisterLayout {
        static let extent = 4
        static var word: Register<Self, UInt32> { .init(0) }
    }

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
        view.write(FirstRegister.word, 0)
        let after = view.read(FirstRegister.word)
        let kind = view.isMapped ? "mapped" : "trapped"
        return SelfTestStep(
            name: "stale view", passed: before == .max && after == .max,
            detail: "after close, BAR 0 (\(kind)) read 0x\(String(before, radix: 16)), and 0x\(String(after, radix: 16)) after a write through it")
    }
}
