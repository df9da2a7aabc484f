import Store
import TestSupport

enum TestSupportBridge {
    static var sample: Store.Curriculum { SampleCurriculum.make() }
}
