// The projection lives in lib/local (`npm run plan` uses it too); the tests keep importing it from here.
export * from '../../lib/local/aws-projection';
