package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestStorefront drives the storefront the gateway serves at / in headless
// Chromium, as a customer on a phone-sized screen (browse with paging, and
// past the end; a refused sign-up with the API's message and the field's,
// then sign up; a product's page, the cart, an order placed with the
// keyboard alone and watched from placed to confirmed and its shipment
// without a reload; an order cancelled for want of stock, naming the
// product, and one whose payment is declined, each placed with a double
// click and each with its reason; the history, three orders; the
// notifications, logging out) and as an admin with the keyboard alone (a
// product named like markup shown as those characters, stock set). Tab must
// reach every control of the catalog, a product's page, the cart and the
// admin's page. Any JavaScript exception, console error, CSP
// violation or dialog fails it; after every step no control lacks a label,
// nothing overflows the screen sideways and nothing is in the browser's
// storage. A screenshot of every step goes to the results folder (see
// shotsDir). It runs on every profile's pass.
func TestStorefront(t *testing.T) {
	chrome := chromiumPath()
	if chrome == "" {
		if os.Getenv("E2E_REQUIRED") != "" {
			t.Fatal("no Chromium (E2E_CHROMIUM, or chromium or google-chrome on PATH): run `make tools`, which installs it or says how")
		}
		t.Skip("no Chromium: set E2E_CHROMIUM, or put chromium or google-chrome on PATH")
	}
	dir := shotsDir(t)
	admin := adminToken(t)

	// Enough products for a second catalog page (12 a page), then the two
	// this test buys, newest first: on the first page.
	var list struct{ Total int }
	gateway(t, "").mustCall(t, "GET", "/api/products?limit=1", nil, 200, &list)
	for i := list.Total; i < 13; i++ {
		newProduct(t, admin, 100, 1)
	}
	scarce := newProduct(t, admin, 500, 1)
	p := newProduct(t, admin, 1250, 5)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.WindowSize(1280, 900),
		// A test browser on loopback pages: containers seldom allow its sandbox.
		chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()

	t.Run("customer", func(t *testing.T) {
		b := openBrowser(t, alloc, dir, "customer")
		b.do("open the catalog on a phone-sized screen", chromedp.EmulateViewport(390, 844),
			chromedp.Navigate(env.gatewayURL()+"/#/products"))
		b.wait("the catalog", `document.querySelector('#view-title')?.textContent === 'Products' && document.querySelector('.card') !== null`)
		b.eval(`window.__sameDocument = true`)
		if n := b.eval(`String(performance.getEntriesByType('resource').filter(e => new URL(e.name).pathname === '/api/products').length)`); n != "1" {
			b.fail("the first load asked for the catalog %s times", n)
		}

		// Keyboard: the first Tab stop is the skip link, which moves to the content.
		b.do("tab to the skip link", chromedp.KeyEvent("\t"))
		b.wait("the skip link focused", `document.activeElement?.className === 'skip'`)
		b.do("follow it", chromedp.KeyEvent("\r"))
		b.wait("the content focused", `document.activeElement?.id === 'main'`)
		b.step("catalog")

		b.do("next page", chromedp.Click(chromedp.CSS(`.pager a[href="#/products?offset=12"]`)))
		b.wait("the second page", `document.querySelector('.pager span')?.textContent.startsWith('13–')`)
		b.step("catalog-page-2")
		b.do("previous page", chromedp.Click(chromedp.CSS(`.pager a[href="#/products?offset=0"]`)))
		b.wait("the first page again", fmt.Sprintf(`document.querySelector('a[href="#/products/%s"]') !== null`, p.ID))
		// A page past the end (an old link) leads to the last page, not to
		// one more empty page before it.
		b.eval(`location.hash = '#/products?offset=9000'`)
		b.wait("a link to the last page", `(() => {
			const a = document.querySelector('#view-dynamic a[href^="#/products?offset="]');
			const m = /^#\/products\?offset=(\d+)$/.exec(a?.getAttribute('href') || '');
			return a?.textContent === 'Go to the last page' && m !== null && Number(m[1]) % 12 === 0 && Number(m[1]) > 0 &&
				document.querySelectorAll('#view-dynamic a[href^="#/products?offset="]').length === 1;
		})()`)
		b.step("catalog-past-the-end")
		b.do("the last page", chromedp.Click(chromedp.Search(`//a[normalize-space()="Go to the last page"]`)))
		b.wait("its products and no next page", `document.querySelector('.card') !== null && ![...document.querySelectorAll('.pager a')].some(a => a.textContent === 'Next →')`)

		// A view whose call fails says why and offers to try again.
		missing := "prd_" + strings.Repeat("0", 24)
		_, reply := gateway(t, "").call(t, "GET", "/api/products/"+missing, nil)
		var notFound struct{ Error struct{ Message string } }
		if json.Unmarshal(reply, &notFound) != nil || notFound.Error.Message == "" {
			t.Fatalf("an unknown product: %s", reply)
		}
		b.eval(`location.hash = '#/products/` + missing + `'`)
		b.wait("the API's message and a way to try again", `document.querySelector('#view-dynamic .error p')?.textContent === `+jsString(notFound.Error.Message)+` &&
			[...document.querySelectorAll('#view-dynamic button')].some(b => b.textContent === 'Try again')`)
		b.step("product-not-found")

		// A view that asks for a session, left for the catalog: signing up
		// later stays in the catalog (checked below), not back to the orders.
		b.eval(`location.hash = '#/orders'`)
		b.wait("asked to log in", `document.querySelector('#view-dynamic a[href="#/login"]') !== null`)
		b.do("back to the catalog", chromedp.Click(chromedp.CSS(`.nav a[href="#/products"]`)))
		b.wait("the catalog", fmt.Sprintf(`document.querySelector('a[href="#/products/%s"]') !== null`, p.ID))

		// An error of the API is shown as the error model's message.
		email, pw := "e2e-nobody-"+randomHex(4)+"@example.com", "wrong password 1"
		_, reply = gateway(t, "").call(t, "POST", "/api/login", map[string]string{"email": email, "password": pw})
		var apiErr struct{ Error struct{ Message string } }
		if json.Unmarshal(reply, &apiErr) != nil || apiErr.Error.Message == "" {
			t.Fatalf("login with an unknown email: %s", reply)
		}
		b.do("a failed login", chromedp.Click(chromedp.CSS(`.signed-out a[href="#/login"]`)),
			chromedp.SendKeys(chromedp.CSS("#login-email"), email), chromedp.SendKeys(chromedp.CSS("#login-password"), pw+"\r"))
		b.wait("the API's message", fmt.Sprintf(`document.querySelector('#login-form .error')?.textContent === %s`, jsString(apiErr.Error.Message)))
		b.step("login-error")

		// Markup, and a word far wider than a phone (the header and the
		// announcements must wrap it too).
		name, signUpEmail := "Ada <b>Lovelace</b> "+strings.Repeat("N", 60), "e2e-shop-"+randomHex(6)+"@example.com"
		// A field the API refuses: its message, then each field's own.
		_, reply = gateway(t, "").call(t, "POST", "/api/users", map[string]string{"email": signUpEmail, "password": "short", "name": name})
		var invalid struct {
			Error struct {
				Message string
				Fields  []struct{ Field, Message string }
			}
		}
		if json.Unmarshal(reply, &invalid) != nil || len(invalid.Error.Fields) != 1 {
			t.Fatalf("sign-up with a short password: %s", reply)
		}
		b.do("a refused sign-up", chromedp.Click(chromedp.CSS(`.signed-out a[href="#/signup"]`)),
			chromedp.SendKeys(chromedp.CSS("#signup-name"), name), chromedp.SendKeys(chromedp.CSS("#signup-email"), signUpEmail),
			chromedp.SendKeys(chromedp.CSS("#signup-password"), "short\r"))
		f := invalid.Error.Fields[0]
		b.wait("the message and the field's", fmt.Sprintf(`document.querySelector('#signup-form .error p')?.textContent === %s &&
			document.querySelector('#signup-form .error li')?.textContent === %s && document.querySelector('#signup-password').getAttribute('aria-invalid') === 'true'`,
			jsString(invalid.Error.Message), jsString(f.Field+": "+f.Message)))
		b.step("signup-error")
		// The customer mends the password; the rest is kept as typed.
		b.eval(`document.querySelector('#signup-password').value = ''`)
		b.do("sign up", chromedp.SendKeys(chromedp.CSS("#signup-password"), password+"\r"))
		b.wait("signed in", fmt.Sprintf(`document.querySelector('#whoami').textContent === %s && location.hash === '#/products'`, jsString(name)))
		b.step("signed-up")

		// A wrong password typed while signed in is an error of the form,
		// not the session's end.
		b.eval(`location.hash = '#/login'`)
		b.do("type it", chromedp.SendKeys(chromedp.CSS("#login-email"), signUpEmail), chromedp.SendKeys(chromedp.CSS("#login-password"), "not the password\r"))
		b.wait("the API's message, still signed in", fmt.Sprintf(`document.querySelector('#login-form .error p')?.textContent === %s &&
			document.querySelector('#whoami').textContent === %s && !document.querySelector('#announce').textContent.includes('expired')`, jsString(apiErr.Error.Message), jsString(name)))
		b.do("back to the catalog", chromedp.Click(chromedp.CSS(`.nav a[href="#/products"]`)))
		b.wait("the catalog", fmt.Sprintf(`document.querySelector('#view-login').hidden && document.querySelector('.card a[href="#/products/%s"]') !== null`, p.ID))
		b.tabReachesEverything("the catalog, signed in")

		b.do("open a product", chromedp.Click(chromedp.CSS(fmt.Sprintf(`.card a[href="#/products/%s"]`, p.ID))))
		// No description: no line for it (append(null) once wrote "null").
		b.wait("its page with its stock", fmt.Sprintf(`document.querySelector('#view-title')?.textContent === %s && document.querySelector('#product-stock-level')?.textContent === '5 in stock' &&
			!document.querySelector('#view-dynamic').textContent.includes('null')`, jsString(p.Name)))
		b.step("product")
		b.tabReachesEverything("a product's page")
		b.do("two into the cart", chromedp.SetValue(chromedp.CSS("#add-quantity"), "2"), chromedp.SendKeys(chromedp.CSS("#add-quantity"), "\r"))
		b.wait("the cart", `location.hash === '#/cart' && document.querySelector('#nav-cart').textContent === 'Cart (2)'`)
		b.step("cart")

		// The keyboard alone: Tab reaches every control of the page, and
		// the order is placed with Tab and Enter.
		b.tabReachesEverything("the cart")
		b.tabTo("the Place order button", `document.activeElement?.textContent === 'Place order'`)
		b.do("place the order with Enter", chromedp.KeyEvent("\r"))
		b.wait("the order's page", `/^#\/orders\/ord_[0-9a-f]{24}$/.test(location.hash)`)
		orderID := strings.TrimPrefix(b.eval(`location.hash`), "#/orders/")
		b.step("placed")
		b.wait("confirmed, without a reload", `document.querySelector('#order-status')?.textContent === 'Confirmed.' && window.__sameDocument === true`)
		b.step("confirmed")
		b.wait("its shipment", `document.querySelector('#shipment-status')?.textContent.startsWith('Shipment: ')`)
		b.step("shipment")

		// An order products cannot fill is cancelled, and says why. The
		// catalog adds no more than the stock (1).
		b.addOneToCart(scarce)
		if b.eval(fmt.Sprintf(`String(document.querySelector('button[aria-label=%s]').disabled)`, jsString("Add "+scarce.Name+" to cart"))) != "true" {
			b.fail("the catalog still offers %s with its whole stock in the cart", scarce.Name)
		}
		gateway(t, admin).mustCall(t, "PUT", "/api/products/"+scarce.ID+"/stock", map[string]int{"stock": 0}, 200, nil)
		b.orderTheCart()
		// Cancelled before it was priced: no total to show, and no bare 0.
		b.wait("cancelled, naming the product", `document.querySelector('#order-status')?.textContent === `+jsString("Cancelled: out of stock: “"+scarce.Name+"”")+` && [...document.querySelectorAll('dt')].find(d => d.textContent === 'Total')?.nextElementSibling?.textContent === '—'`)
		b.step("cancelled")

		// A payment the provider declines cancels the order, and says so.
		declinePayments(t, 1)
		b.addOneToCart(p)
		b.orderTheCart()
		b.wait("cancelled: payment declined", `document.querySelector('#order-status')?.textContent === 'Cancelled: payment declined'`)
		b.step("declined")

		b.do("the order history", chromedp.Click(chromedp.CSS(`.nav a[href="#/orders"]`)))
		// Three orders (the two after the first were placed with a double
		// click: one order each).
		b.wait("the order, confirmed", fmt.Sprintf(`[...document.querySelectorAll('.orders li')].some(li => li.textContent.includes(%s) && li.querySelector('.badge')?.textContent === 'confirmed')`, jsString(orderID)))
		if n := b.eval(`String(document.querySelectorAll('.orders li').length)`); n != "3" {
			b.fail("%s orders in the history, want 3", n)
		}
		b.step("orders")

		b.do("the notifications", chromedp.Click(chromedp.CSS(`.nav a[href="#/notifications"]`)))
		notes := fmt.Sprintf(`document.querySelectorAll('.notes a[href="#/orders/%s"]').length >= 4`, orderID)
		// The confirmation's notifications may trail it: the page's Refresh
		// button, at most once a second, until they are there.
		var refreshed time.Time
		eventually(t, 30*time.Second, func() string {
			if ok, _ := chromedp.Run(b.ctx, chromedp.Evaluate[bool](notes)); ok {
				return ""
			}
			if time.Since(refreshed) > time.Second {
				refreshed = time.Now()
				_ = chromedp.Do(b.ctx, chromedp.Click(chromedp.Search(`//button[normalize-space()="Refresh"]`)))
			}
			return "fewer than 4 notifications of the order on the page"
		})
		// The cancellation's notification names the product, as the order's
		// page does.
		b.wait("the product named in the notifications", fmt.Sprintf(`[...document.querySelectorAll('.notes .message')].some(m => m.textContent.includes(%s)) &&
			![...document.querySelectorAll('.notes .message')].some(m => /prd_[0-9a-f]{24}/.test(m.textContent))`, jsString("“"+scarce.Name+"”")))
		b.step("notifications")

		b.do("log out", chromedp.Click(chromedp.CSS("#logout")))
		b.wait("signed out", `document.querySelector('#whoami').textContent === '' && !document.querySelector('.signed-out').hidden`)
		b.eval(`location.hash = '#/orders'`)
		b.wait("asked to log in", `document.querySelector('#view-dynamic a[href="#/login"]') !== null`)
		b.step("signed-out")
	})

	t.Run("admin", func(t *testing.T) {
		b := openBrowser(t, alloc, dir, "admin")
		b.do("log in", chromedp.Navigate(env.gatewayURL()+"/#/login"),
			chromedp.SendKeys(chromedp.CSS("#login-email"), adminEmail),
			chromedp.SendKeys(chromedp.CSS("#login-password"), env.secrets["admin-password"]+"\r"))
		b.wait("the admin's menu", `!document.querySelector('.admin-only').hidden`)
		b.do("the admin page", chromedp.Click(chromedp.CSS(`.nav a[href="#/admin"]`)))
		b.wait("the admin page", `!document.querySelector('#view-admin').hidden`)

		name := "<img src=x onerror=alert(1)> " + randomHex(3)
		// A description with a word far wider than a phone: it must wrap.
		description := "<script>alert(2)</script> " + strings.Repeat("W", 300)
		// The keyboard alone: Tab reaches every control, and both forms are
		// filled with keys and sent with Enter.
		b.tabReachesEverything("the admin page")
		b.tabTo("the new product's name", `document.activeElement?.id === 'product-name'`)
		b.do("add a product named like markup", chromedp.KeyEvent(name+"\t"), chromedp.KeyEvent(description+"\t"),
			chromedp.KeyEvent("9.99\t\t"))
		b.wait("the stock field focused", `document.activeElement?.id === 'product-stock'`)
		b.do("with 3 in stock", chromedp.KeyEvent("\b\b3\r"))
		b.wait("added", fmt.Sprintf(`document.querySelector('#product-form .ok')?.textContent.includes(%s)`, jsString(name)))
		id := b.eval(`document.querySelector('#stock-product').value`)
		if !regexp.MustCompile(`^prd_[0-9a-f]{24}$`).MatchString(id) {
			t.Fatalf("the new product is not chosen for its stock: %q", id)
		}
		if got := stockOf(t, id); got != 3 {
			t.Fatalf("stock %d after the admin typed 3", got)
		}
		b.step("product-added")

		noMarkup := `document.querySelectorAll('main img, main script, body > img').length === 0`
		b.do("its page on a phone-sized screen", chromedp.EmulateViewport(390, 844))
		b.eval(fmt.Sprintf(`location.hash = '#/products/%s'`, id))
		b.wait("its name as text", fmt.Sprintf(`document.querySelector('#view-title')?.textContent === %s && document.querySelector('.description')?.textContent === %s && %s`, jsString(name), jsString(description), noMarkup))
		b.step("markup-as-text")
		b.do("the catalog", chromedp.Click(chromedp.CSS(`.nav a[href="#/products"]`)))
		b.wait("its name as text in the catalog", fmt.Sprintf(`[...document.querySelectorAll('.card h2 a')].some(a => a.textContent === %s) && %s`, jsString(name), noMarkup))
		b.step("catalog")

		b.do("set its stock", chromedp.Click(chromedp.CSS(`.nav a[href="#/admin"]`)))
		b.wait("the product among the choices", fmt.Sprintf(`document.querySelector('#stock-product option[value="%s"]') !== null`, id))
		if got := b.eval(`document.querySelector('#stock-product').value`); got != id {
			b.fail("the stock form chose %q, not the product just added", got)
		}
		b.tabTo("the new stock", `document.activeElement?.id === 'stock-value'`)
		// Empty is not 0.
		b.do("an empty stock", chromedp.KeyEvent("\r"))
		b.wait("refused", `document.querySelector('#stock-form .error li')?.textContent === 'stock: must be a whole number from 0 up'`)
		if got := stockOf(t, id); got != 3 {
			t.Fatalf("stock %d after the admin sent an empty one (was 3)", got)
		}
		b.tabTo("the new stock", `document.activeElement?.id === 'stock-value'`)
		b.do("to 7", chromedp.KeyEvent("7\r"))
		b.wait("set", `document.querySelector('#stock-form .ok')?.textContent.endsWith('is now 7.')`)
		if got := stockOf(t, id); got != 7 {
			t.Fatalf("stock %d after the admin set it to 7", got)
		}
		b.step("stock-set")
	})
}

// browser is a tab of the test's Chromium that records what went wrong in
// its page.
type browser struct {
	t        *testing.T
	ctx      context.Context
	dir, who string
	steps    int
	mu       sync.Mutex
	problems []string
}

func openBrowser(t *testing.T, alloc context.Context, dir, who string) *browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	b := &browser{t: t, ctx: ctx, dir: dir, who: who}
	// The tab first, so that the subscriptions see all its page does.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// The API's own 4xx (a shipment not made yet) are the browser's
			// network errors; everything else is the page's.
			if (m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException) && m.Source != "network" {
				b.problem("%s %s:%d", m, m.URL, m.Line)
			}
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.problem("a %s dialog opened: %q", ev.Type, ev.Message)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return b
}

func (b *browser) problem(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// fail saves a screenshot of the page as it is and fails the test.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	b.shot("failed")
	b.mu.Lock()
	problems := strings.Join(b.problems, "\n  ")
	b.mu.Unlock()
	b.t.Fatalf("%s: %s\npage problems:\n  %s", b.who, fmt.Sprintf(format, args...), problems)
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

// eval runs a script in the page and returns its value as a string.
func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](js))
	if err != nil {
		b.fail("%s: %v", js, err)
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// wait waits, up to 30 seconds, for the page to make cond true.
func (b *browser) wait(what, cond string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		b.fail("waiting for %s (%s): %v", what, cond, err)
	}
}

// addOneToCart opens the catalog and adds one unit of p from its card.
func (b *browser) addOneToCart(p product) {
	b.t.Helper()
	b.do("the catalog", chromedp.Click(chromedp.CSS(`.nav a[href="#/products"]`)))
	b.wait("the catalog", fmt.Sprintf(`document.querySelector('.card a[href="#/products/%s"]') !== null`, p.ID))
	b.do("add "+p.Name, chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[aria-label=%s]`, jsString("Add "+p.Name+" to cart")))))
	b.wait("in the cart", `document.querySelector('#nav-cart').textContent === 'Cart (1)'`)
}

// orderTheCart opens the cart and places its order with a double click, as
// an impatient customer does: one order.
func (b *browser) orderTheCart() {
	b.t.Helper()
	b.do("order the cart", chromedp.Click(chromedp.CSS(`#nav-cart`)), doubleClick(chromedp.Search(`//button[normalize-space()="Place order"]`)))
	b.wait("the order's page", `/^#\/orders\/ord_[0-9a-f]{24}$/.test(location.hash)`)
}

// doubleClick clicks the element twice, as a person's double click does: a
// click, then a second press whose click count is 2 (chromedp's DoubleClick
// sends the second press alone, which the page sees as one click).
func doubleClick[S chromedp.Selectable](sel S) chromedp.Action[chromedp.Void] {
	return chromedp.Query(sel, chromedp.NodeVisible, chromedp.After(func(ctx context.Context, t *chromedp.Target, nodes []*chromedp.Node) error {
		for n := range 2 {
			if _, err := chromedp.MouseClickNode(nodes[0], chromedp.ClickCount(n+1))(ctx, t); err != nil {
				return err
			}
		}
		return nil
	}))
}

// tabReachesEverything presses Tab, from the page's first control, as many
// times as the page has controls, and fails unless every visible link,
// button and field was focused on the way: a control the keyboard cannot
// reach (a negative tabindex, a positive one out of order) fails it.
func (b *browser) tabReachesEverything(where string) {
	b.t.Helper()
	n, err := strconv.Atoi(b.eval(`(() => {
		window.__controls = [...document.querySelectorAll('a[href], button, input, select, textarea')]
			.filter(e => !e.disabled && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden');
		window.__reached = new Set();
		window.__onFocus = (ev) => window.__reached.add(ev.target);
		document.addEventListener('focusin', window.__onFocus, true);
		// Chromium goes on from the last element focused or clicked: start
		// at the first control (the skip link), as a page just opened does.
		window.__controls[0]?.focus();
		return String(window.__controls.length);
	})()`))
	if err != nil || n == 0 {
		b.fail("%s: no controls to reach (%v)", where, err)
	}
	for range n {
		b.do("Tab", chromedp.KeyEvent("\t"))
	}
	missing := b.eval(`(() => {
		document.removeEventListener('focusin', window.__onFocus, true);
		return window.__controls.filter(e => !window.__reached.has(e))
			.map(e => e.id || e.getAttribute('aria-label') || e.textContent.trim() || e.tagName).join(' | ');
	})()`)
	if missing != "" {
		b.fail("%s: Tab never reaches %s", where, missing)
	}
}

// tabTo presses Tab until cond holds of the focused element, at most 100
// times.
func (b *browser) tabTo(what, cond string) {
	b.t.Helper()
	for range 100 {
		if b.eval(fmt.Sprintf(`String(%s)`, cond)) == "true" {
			return
		}
		b.do("Tab", chromedp.KeyEvent("\t"))
	}
	b.fail("Tab never reached %s", what)
}

// step checks the page after a step of the journey and saves its screenshot.
func (b *browser) step(name string) {
	b.t.Helper()
	b.shot(name)
	b.mu.Lock()
	problems := len(b.problems)
	b.mu.Unlock()
	if problems > 0 {
		b.fail("after %s", name)
	}
	var c struct {
		Unlabelled []string `json:"unlabelled"`
		Overflow   int      `json:"overflow"`
		Stored     int      `json:"stored"`
		URL        string   `json:"url"`
	}
	raw := b.eval(`JSON.stringify({
		unlabelled: [...document.querySelectorAll('input, select, textarea')]
			.filter(e => e.type !== 'hidden' && e.getClientRects().length > 0 && e.labels.length === 0 && !e.getAttribute('aria-label'))
			.map(e => e.id || e.name || e.tagName),
		overflow: document.documentElement.scrollWidth - window.innerWidth,
		stored: localStorage.length + sessionStorage.length + document.cookie.length,
		url: location.href,
	})`)
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		b.fail("after %s: %v", name, err)
	}
	switch {
	case len(c.Unlabelled) > 0:
		b.fail("after %s: controls without a label: %v", name, c.Unlabelled)
	case c.Overflow > 0:
		b.fail("after %s: the page is %d px wider than the screen", name, c.Overflow)
	case c.Stored > 0:
		b.fail("after %s: something is in localStorage, sessionStorage or a cookie", name)
	case !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/(#/[a-z]+(/[a-z]{3}_[0-9a-f]{24}|\?offset=\d+)?)?$`).MatchString(c.URL):
		b.fail("after %s: the URL %q holds more than a view", name, c.URL)
	}
}

func (b *browser) shot(name string) {
	b.steps++
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.dir, fmt.Sprintf("%s-%02d-%s.png", b.who, b.steps, name)), png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// chromiumPath is the browser to drive, as `make tools` finds it
// (tools/toolchain.sh chromium-path: E2E_CHROMIUM, else the usual names on
// PATH); "" when there is none.
func chromiumPath() string {
	out, err := exec.Command("bash", filepath.Join("..", "tools", "toolchain.sh"), "chromium-path").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// shotsDir is where the screenshots go, emptied first so that it holds
// this run's only: storefront-<profile> in $E2E_RESULTS, else in e2e/results
// (kept after the run, ignored by git).
func shotsDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("E2E_RESULTS")
	if base == "" {
		base = "results"
	}
	dir, err := filepath.Abs(filepath.Join(base, "storefront-"+env.profile))
	if err == nil {
		err = os.RemoveAll(dir)
	}
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of every step in %s", dir)
	return dir
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
