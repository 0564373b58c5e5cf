extension FixedWidthInteger {
    /// Whether bit `index` is set.
    func bit(_ index: Int) -> Bool { self >> index & 1 == 1 }
}
