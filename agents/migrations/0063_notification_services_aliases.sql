-- Notification preferences kept each service as the user spelled it, so a user who chose
-- 'max' or 'prime' (hbo_max and prime_video to the catalog, search and every feed) matched no
-- offer and was never alerted. The API now reads services through the one alias rule
-- (schemas/ingestion.py normalize_platform); this puts the stored ones in the same form: the
-- slug (runs of anything but a-z0-9 as one '_', none at the ends), then the aliases as
-- PLATFORM_ALIASES had them when this was written. Sorted and deduplicated, as the model keeps
-- them.
UPDATE notification_preferences p
SET services = ARRAY(
    SELECT DISTINCT coalesce(a.id, s.slug)
    FROM (SELECT btrim(regexp_replace(lower(v), '[^a-z0-9]+', '_', 'g'), '_') AS slug
          FROM unnest(p.services) AS v) s
    LEFT JOIN (VALUES
        ('prime', 'prime_video'), ('amazon', 'prime_video'), ('amazon_prime', 'prime_video'),
        ('amazon_prime_video', 'prime_video'), ('primevideo', 'prime_video'),
        ('hbo', 'hbo_max'), ('max', 'hbo_max'), ('hbomax', 'hbo_max'),
        ('disney', 'disney_plus'), ('disneyplus', 'disney_plus'),
        ('apple_tv', 'apple_tv_plus'), ('appletv', 'apple_tv_plus'),
        ('appletv_plus', 'apple_tv_plus'), ('apple', 'apple_tv_plus')
    ) AS a(alias, id) ON a.alias = s.slug
    WHERE s.slug <> ''
    ORDER BY 1
);
