// cdktf's jest matchers (toHaveResourceWithProperties, ...) for every test file; the import
// brings their type declarations into the type-check of the tests.
import 'cdktf/lib/testing/adapters/jest';
import { Testing } from 'cdktf';

Testing.setupJest();
